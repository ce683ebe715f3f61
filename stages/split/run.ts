import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StageError, type StageContext } from '../../engine/stage-api.js';
import { csvText } from '../lib/pandas-csv.js';
import { writeFileAtomic } from '../lib/atomic-write.js';
import { MetadataError, parseMetadata } from './metadata.js';
import { DATASET_RULES, SplitInputError, splitRows, type SplitName } from './recipe.js';

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
  max_metadata_mb?: number;
}

const SPLITS: SplitName[] = ['train', 'val', 'test_adult_calib', 'test_healthy_adult', 'test_peds', 'test'];

export async function run(ctx: StageContext<SplitWith>): Promise<void> {
  const w = ctx.with;
  const bad = (field: string, why: string): never => {
    throw new StageError(`stage ${ctx.stage}: with.${field} ${why}`);
  };
  if (w.dataset !== undefined && !Object.hasOwn(DATASET_RULES, w.dataset)) {
    bad('dataset', `must be one of ${Object.keys(DATASET_RULES).join(', ')} (got "${w.dataset}"), or left out to use each row's dset.`);
  }
  const frac = (field: string, v: number): number =>
    typeof v === 'number' && v >= 0 && v < 1 ? v : bad(field, `must be a number in [0, 1) (got ${String(v)}).`);
  const edges = w.age_bins;
  if (!Array.isArray(edges) || edges.length < 2 || edges.some((e, i) => typeof e !== 'number' || (i > 0 && e <= edges[i - 1]!)))
    bad('age_bins', `must be at least two increasing numbers (got ${JSON.stringify(edges)}).`);
  if (!Number.isInteger(w.seed) || w.seed < 0 || w.seed > 0xffffffff) bad('seed', `must be an integer in [0, 2^32 − 1] (numpy's RandomState), got ${String(w.seed)}.`);
  const maxMb = w.max_metadata_mb ?? 1024;
  if (!(typeof maxMb === 'number' && maxMb > 0)) bad('max_metadata_mb', `must be a positive number (got ${String(maxMb)}).`);
  const options = {
    seed: w.seed,
    healthyProp: w.healthy_prop === undefined ? undefined : frac('healthy_prop', w.healthy_prop),
    ageBins: edges,
    calibFrac: frac('calib_frac', w.calib_frac),
    valFrac: frac('val_frac', w.val_frac),
    onePerPatient: w.one_per_patient,
  };

  let file = ctx.resolve(w.metadata);
  let shown = w.metadata;
  if (existsSync(file) && statSync(file).isDirectory()) {
    file = join(file, 'rows.csv');
    shown = join(w.metadata, 'rows.csv');
  }
  if (!existsSync(file)) bad('metadata', `${w.metadata} does not exist (expected a metadata CSV or a shard set directory).`);
  const size = statSync(file).size;
  if (size > maxMb * 1024 * 1024) {
    throw new StageError(
      `stage ${ctx.stage}: ${shown} is ${(size / 1024 / 1024).toFixed(1)} MB, more than with.max_metadata_mb = ${maxMb}; ` +
        'raise with.max_metadata_mb to split it (the whole table is held in memory).',
    );
  }

  let parsed;
  let result;
  try {
    parsed = parseMetadata(await readFile(file), shown, w.dataset);
    result = splitRows(parsed.meta, options);
  } catch (e) {
    if (e instanceof MetadataError) throw new StageError(`stage ${ctx.stage}: ${e.message}`);
    if (e instanceof SplitInputError) {
      const lines = e.rows.slice(0, 10).map((i) => parsed!.lines[i]);
      const where = lines.length ? ` (${shown}, line${lines.length > 1 ? 's' : ''} ${lines.join(', ')}${e.rows.length > 10 ? ', …' : ''})` : '';
      throw new StageError(`stage ${ctx.stage}: ${e.message}${where}`);
    }
    throw e;
  }
  if (ctx.signal.aborted) return;

  const { columns, rows, meta } = parsed;
  const outCols = [...columns.filter((c) => c !== 'split' && c !== 'row'), 'row', 'split'];
  const out: string[][] = [outCols];
  const tally = () => Object.fromEntries(SPLITS.map((s) => [s, 0])) as Record<SplitName, number>;
  const perDataset = new Map(result.datasets.map((d) => [d.dset, { sizes: tally(), positives: tally() }]));
  const counts = tally();
  const positives = tally();
  rows.forEach((r, i) => {
    const s = result.assignment.get(i);
    if (!s) return;
    const d = perDataset.get(meta[i]!.dset)!;
    counts[s]++;
    d.sizes[s]++;
    if (meta[i]!.cardiomegaly === 1) {
      positives[s]++;
      d.positives[s]++;
    }
    out.push(outCols.map((c) => (c === 'row' ? String(i) : c === 'split' ? s : (r[c] ?? ''))));
  });
  await writeFileAtomic(ctx.resolve(w.out), csvText(out));
  const names = result.datasets.map((d) => d.dset);
  if (w.sizes) {
    const summary = {
      datasets: Object.fromEntries(result.datasets.map((d) => [d.dset, {
        input_rows: d.inputRows,
        dropped_one_per_patient: d.droppedPerPatient,
        sizes: perDataset.get(d.dset)!.sizes,
        cardiomegaly_positive: perDataset.get(d.dset)!.positives,
        healthy_adult_bins: d.perBin,
        val_candidates: d.valCandidates,
      }])),
      seed: w.seed,
      input_rows: rows.length,
      sizes: counts,
      cardiomegaly_positive: positives,
    };
    await writeFileAtomic(ctx.resolve(w.sizes), JSON.stringify(summary, null, 2) + '\n');
  }
  ctx.record({ split: { datasets: names, sizes: counts } });
  for (const d of result.datasets) {
    const sizes = perDataset.get(d.dset)!.sizes;
    ctx.log(`${d.dset}: ${SPLITS.filter((s) => sizes[s]).map((s) => `${s} ${sizes[s]}`).join(', ')} (dropped ${d.droppedPerPatient} extra images of the same patient)`);
  }
}
