/**
 * Built-in stage kinds (`uses:`): their manifests (loaded on every run: small, no heavy imports) and the hash of
 * their implementation (part of the key). A kind's run.js is never imported here: only the stage runner does that,
 * when the stage actually runs.
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve, sep, basename } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { hashJson } from '../cache/hash.js';
import type { Hash, HashState } from '../cache/types.js';
import type { StageManifest } from './stage-api.js';

/** dist/engine → dist; when run from sources (tsx), engine → the repo root. */
const here = dirname(fileURLToPath(import.meta.url));
const distRoot = dirname(here);
const repoRoot = basename(distRoot) === 'dist' ? dirname(distRoot) : distRoot;
/** Where compiled kinds live: `<stagesRoot>/<kind>/manifest.js` and `run.js`. */
export const stagesRoot = basename(distRoot) === 'dist' ? join(distRoot, 'stages') : join(repoRoot, 'dist', 'stages');
/** The compiled engine folder (dist/engine), home of runner.js. */
export const engineDistDir = basename(distRoot) === 'dist' ? here : join(repoRoot, 'dist', 'engine');

let manifests: Map<string, StageManifest> | undefined;
let manifestPaths: string[] = [];
/** kind → the root folder its compiled manifest.js/run.js live under. */
const roots = new Map<string, string>();

/**
 * Extra folders of compiled kinds (`<dir>/<kind>/manifest.js`, `run.js`), colon-separated, from PIPE_KINDS_PATH:
 * project-local kinds, and the engine's tests (which need a kind whose implementation they can edit).
 * A kind found there shadows a built-in one of the same name.
 */
function kindRoots(): string[] {
  const extra = (process.env.PIPE_KINDS_PATH ?? '').split(':').filter((d) => d.length > 0);
  return [stagesRoot, ...extra.map((d) => resolve(d))];
}

/**
 * Import every `manifest.js` under the kind roots once (a dozen small modules), so that `resolveKind` can be
 * synchronous for the DSL's validation.
 */
export async function loadKinds(): Promise<Map<string, StageManifest>> {
  if (manifests) return manifests;
  const found = new Map<string, StageManifest>();
  const all: string[] = [];
  for (const root of kindRoots()) {
    const files = existsSync(root) ? findManifests(root) : [];
    all.push(...files);
    const mods = await Promise.all(files.map(async (file) => [file, (await import(pathToFileURL(file).href)) as { manifest?: StageManifest }] as const));
    for (const [file, mod] of mods) {
      const kind = relative(root, dirname(file)).split(sep).join('/');
      if (!mod.manifest) continue;
      found.set(kind, mod.manifest);
      roots.set(kind, root);
    }
  }
  manifests = found;
  manifestPaths = all;
  return found;
}

/** The manifest.js files loadKinds imported (a cached validated pipeline is only valid while they are unchanged). */
export function loadedManifestFiles(): readonly string[] {
  return manifestPaths;
}

/** The folder holding a kind's compiled run.js (the runner's `stagesRoot`). */
export function kindRoot(kind: string): string {
  return roots.get(kind) ?? stagesRoot;
}

/** The manifest of kind `evaluate/fpr`, or undefined for an unknown kind. Call `loadKinds()` first. */
export function resolveKind(kind: string): StageManifest | undefined {
  return manifests?.get(kind);
}

/** Every known kind (for "did you mean" lists and docs). */
export function knownKinds(): string[] {
  return [...(manifests?.keys() ?? [])].sort();
}

/** Absolute path of the compiled run module of a kind (imported only by the runner). */
export function runModulePath(kind: string): string {
  return join(kindRoot(kind), ...kind.split('/'), 'run.js');
}

const implHashes = new Map<string, Promise<Hash>>();

/**
 * Forget the memoised implementation hashes (a long-lived process, e.g. `pipe watch`, calls this each cycle so an
 * edited kind is seen; the HashState still makes re-hashing unchanged sources cost only stats).
 */
export function resetImplementationHashes(): void {
  implHashes.clear();
}

/**
 * Hash of a kind's implementation: its source folder (`stages/<kind>/`, the .ts sources when the repo has them) and
 * its compiled folder, plus the manifest's `implementation` extra paths, relative to the source folder. Goes through
 * the HashState, so a no-op run only stats these files.
 */
export function implementationHash(kind: string, state: HashState): Promise<Hash> {
  let h = implHashes.get(kind);
  if (!h) {
    h = computeImplementationHash(kind, state);
    implHashes.set(kind, h);
  }
  return h;
}

async function computeImplementationHash(kind: string, state: HashState): Promise<Hash> {
  const root = kindRoot(kind);
  const compiled = join(root, ...kind.split('/'));
  const src = join(repoRoot, 'stages', ...kind.split('/'));
  // Built-in kinds: the .ts sources (what a developer edits) AND the compiled .js the runner executes, so an edit
  // not yet rebuilt cannot put the old code's outputs under a key that claims the new code.
  const folder = root === stagesRoot && existsSync(src) ? src : compiled;
  const parts: Record<string, string | null> = { '.': (await state.hashPath(folder)).hash };
  if (folder !== compiled) parts.compiled = (await state.hashPath(compiled)).hash;
  for (const extra of resolveKind(kind)?.implementation ?? []) {
    parts[extra] = (await state.hashPath(resolve(folder, extra))).hash;
    if (folder !== compiled) parts[`compiled:${extra}`] = (await state.hashPath(resolve(compiled, extra))).hash;
  }
  return hashJson({ kind, parts });
}

function findManifests(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...findManifests(p));
    else if (entry.name === 'manifest.js') out.push(p);
  }
  return out;
}
