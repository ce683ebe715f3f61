/**
 * The environment a stage's process gets. `uses` stages (and `cmd` stages under `settings.env: strict`) see no
 * ambient variable but a short pass-through list: what a process needs to find programs, temp space, locale, the
 * network through a proxy, and its SLURM allocation — nothing that selects what a kind computes. Everything else
 * reaches a stage only as a declared (keyed) value: `env:`, `with:`, params.
 */

/** Names (a trailing `*` = prefix) of ambient variables a hermetic stage still gets. Documented in docs/engine.md. */
export const PASS_THROUGH: readonly string[] = [
  'PATH',
  // An operational bound (engine/stage-api.ts stageInputLimit), not an input: results do not depend on it.
  'PIPE_MAX_STAGE_INPUT_MB',
  'HOME',
  'TMPDIR',
  'LANG',
  'LANGUAGE',
  'LC_*',
  'http_proxy',
  'https_proxy',
  'no_proxy',
  'all_proxy',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'NO_PROXY',
  'ALL_PROXY',
  'NODE_EXTRA_CA_CERTS',
  'NETRC',
  'SLURM_*',
  'CUDA_VISIBLE_DEVICES',
];

/** A variable name a shell can export. */
export function isEnvName(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name);
}

/** Does `name` match one of `patterns` (exact names, or prefixes ending with `*`)? */
export function matchesEnv(name: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : name === p));
}

/**
 * The environment of a child: everything of `ambient` when `pass` is undefined (inherit), else only the ambient
 * variables `pass` names; `explicit` (declared env, PIPE_* set by the engine) always, over the ambient values.
 */
export function childEnv(ambient: NodeJS.ProcessEnv, explicit: Readonly<Record<string, string>>, pass: readonly string[] | undefined): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [k, v] of Object.entries(ambient)) if (v !== undefined && (pass === undefined || matchesEnv(k, pass))) out[k] = v;
  return Object.assign(out, explicit);
}
