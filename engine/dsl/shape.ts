/** Checks of a stage's shape that do not depend on foreach/matrix items: run once per declaration. */
import { DiagnosticBag, didYouMean } from './diagnostics.js';
import type { YMap } from './load.js';
import { OUT_KEYS, RESOURCE_KEYS, RETRY_KEYS, SLURM_KEYS, STAGE_KEYS } from './schema.js';

/** Check a mapping's keys against the known ones; unknown keys get "did you mean". */
export function checkKeys(
  m: YMap,
  known: Record<string, string>,
  bag: DiagnosticBag,
  where: string,
  extra: { stage?: string; field?: string; hint?: Record<string, string> } = {},
): void {
  for (const e of m.entries) {
    if (Object.prototype.hasOwnProperty.call(known, e.key)) continue;
    const hint = extra.hint?.[e.key] ?? didYouMean(e.key, Object.keys(known));
    bag.error(`unknown key \`${e.key}\` in ${where}${hint}`, e.keyLoc.span, { stage: extra.stage, field: extra.field ?? e.key });
  }
}


/** Item-independent checks of a stage (template): known keys, nested mappings' keys, cmd XOR uses. */
export function checkStageShape(m: YMap, stage: string, bag: DiagnosticBag): boolean {
  const before = bag.items.length;
  const hint: Record<string, string> = {
    foreach: ' (`foreach:` goes next to `do:`, at the stage level)',
    matrix: ' (`matrix:` goes next to `do:`, at the stage level)',
    command: ' (did you mean `cmd`?)',
    run: ' (did you mean `cmd`?)',
    inputs: ' (did you mean `deps`?)',
    outputs: ' (did you mean `outs`?)',
  };
  checkKeys(m, STAGE_KEYS, bag, `stage \`${stage}\``, { stage, hint });
  const sub: Array<[string, Record<string, string>]> = [
    ['resources', RESOURCE_KEYS],
    ['slurm', SLURM_KEYS],
  ];
  for (const [k, keys] of sub) {
    const e = m.byKey.get(k);
    if (e?.value.t === 'map') checkKeys(e.value, keys, bag, `\`${k}:\``, { stage, field: k });
  }
  const r = m.byKey.get('retries');
  if (r?.value.t === 'map') checkKeys(r.value, RETRY_KEYS, bag, '`retries:`', { stage, field: 'retries' });
  for (const k of ['outs', 'metrics']) {
    const e = m.byKey.get(k);
    const items = e?.value.t === 'seq' ? e.value.items : e ? [e.value] : [];
    for (const it of items) if (it.t === 'map') checkKeys(it, OUT_KEYS, bag, `an entry of \`${k}:\``, { stage, field: k });
  }
  const cmd = m.byKey.get('cmd');
  const uses = m.byKey.get('uses');
  if (cmd && uses) {
    bag.error('a stage has either `cmd:` or `uses:`, not both', uses.keyLoc.span, { stage, field: 'uses' });
  } else if (!cmd && !uses) {
    const at = m.entries[0]?.keyLoc ?? m.loc;
    bag.error('a stage needs `cmd:` (a shell command) or `uses:` (a built-in stage kind)', at.span, { stage });
  }
  if (m.byKey.has('with') && !uses) {
    bag.error('`with:` configures a `uses:` stage; a `cmd:` stage has no `with:`', m.byKey.get('with')!.keyLoc.span, { stage, field: 'with' });
  }
  return bag.items.length === before || !!(cmd || uses);
}

