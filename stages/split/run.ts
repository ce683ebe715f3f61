import { existsSync, statSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { StageError, type StageContext } from '../../engine/stage-api.js';
import { defaultHealthyProp, splitRows, type Row, type SplitName } from './recipe.js';

export interface SplitWith {
  metadata: string;
  out: string;
  sizes?: string;
  dataset?: string;
  healthy_prop?: number;
  age_bins: number[];
  calib_frac: number;
  val_frac: number;
  one_per_patient: boolean;
  seed: number;
}

const KNOWN = ['vindr_cxr', 'vindr_pcxr', 'nih_cxr18', 'padchest', 'chexbert'];
const SPLITS: SplitName[] = ['train', 'val', 'test_adult_calib', 'test_healthy_adult', 'test_peds', 'test'];

async function atomicWrite(file: string, text: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, text);
  await rename(tmp, file);
}

export async function run(ctx: StageContext<SplitWith>): Promise<void> {
  const w = ctx.with;
  const bad = (field: string, why: string): never => {
    throw new StageError(`stage ${ctx.stage}: with.${field} ${why}`);
  };
  let file = ctx.resolve(w.metadata);
  if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'rows.csv');
  if (!existsSync(file)) bad('metadata', `${w.metadata} does not exist (expected a metadata CSV or a shard set directory).`);
  let columns: string[] = [];
  let rows: Row[];
  try {
    rows = parse(await readFile(file), {
      columns: (h: string[]) => ((columns = h), h),
      skip_empty_lines: true,
      bom: true,
    }) as Row[];
  } catch (e) {
    throw new StageError(`stage ${ctx.stage}: ${file} is not valid CSV: ${(e as Error).message}`);
  }
  const need = ['image_id', 'patient_id', 'age_years', 'Has Finding'];
  const missing = need.filter((c) => !columns.includes(c));
  if (missing.length) throw new StageError(`stage ${ctx.stage}: ${file} lacks column(s) ${missing.join(', ')} (needed by the split recipe).`);
  const dset = w.dataset ?? rows[0]?.['dset'] ?? '';
  if (!KNOWN.includes(dset)) bad('dataset', `must be one of ${KNOWN.join(', ')} (got "${dset}"; set it or add a dset column).`);
  if (dset !== 'vindr_pcxr' && !columns.includes('Cardiomegaly'))
    throw new StageError(`stage ${ctx.stage}: ${file} has no Cardiomegaly column, needed to stratify ${dset}.`);
  const frac = (field: string, v: number): number =>
    typeof v === 'number' && v >= 0 && v < 1 ? v : bad(field, `must be a number in [0, 1) (got ${String(v)}).`);
  const edges = w.age_bins;
  if (!Array.isArray(edges) || edges.length < 2 || edges.some((e, i) => typeof e !== 'number' || (i > 0 && e <= edges[i - 1]!)))
    bad('age_bins', `must be at least two increasing numbers (got ${JSON.stringify(edges)}).`);

  const result = splitRows(rows, {
    dset,
    seed: w.seed,
    healthyProp: frac('healthy_prop', w.healthy_prop ?? defaultHealthyProp(dset)),
    ageBins: edges,
    calibFrac: frac('calib_frac', w.calib_frac),
    valFrac: frac('val_frac', w.val_frac),
    onePerPatient: w.one_per_patient,
  });

  const outCols = [...columns.filter((c) => c !== 'split' && c !== 'row'), 'row', 'split'];
  const out: string[][] = [];
  const counts = Object.fromEntries(SPLITS.map((s) => [s, 0])) as Record<SplitName, number>;
  const positives = Object.fromEntries(SPLITS.map((s) => [s, 0])) as Record<SplitName, number>;
  rows.forEach((r, i) => {
    const s = result.assignment.get(i);
    if (!s) return;
    counts[s]++;
    if ((r['Cardiomegaly'] ?? '').trim() === '1') positives[s]++;
    out.push(outCols.map((c) => (c === 'row' ? String(i) : c === 'split' ? s : (r[c] ?? ''))));
  });
  await atomicWrite(ctx.resolve(w.out), stringify([outCols, ...out]));
  const summary = {
    dataset: dset,
    seed: w.seed,
    input_rows: rows.length,
    dropped_one_per_patient: result.droppedPerPatient,
    sizes: counts,
    cardiomegaly_positive: positives,
    healthy_adult_bins: result.perBin,
  };
  if (w.sizes) await atomicWrite(ctx.resolve(w.sizes), JSON.stringify(summary, null, 2) + '\n');
  ctx.record({ split: { dataset: dset, sizes: counts } });
  ctx.log(`${dset}: ${SPLITS.filter((s) => counts[s]).map((s) => `${s} ${counts[s]}`).join(', ')} (dropped ${result.droppedPerPatient} extra images of the same patient)`);
}
