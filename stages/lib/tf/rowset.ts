/**
 * Which images a stage works on: the shard set's metadata rows, optionally joined with a split CSV (the `split`
 * stage's output) on an id column, then selected by split and labelled. Errors are one paragraph naming the file and
 * column, never a stack trace.
 */
import { parse } from 'csv-parse/sync';
import { readStageInput, StageError, type StageContext } from '../../../engine/stage-api.js';
import { openShards, type ShardRow, type ShardSet } from '../shards.js';

export class RowSetError extends Error {}

/** Adds/overwrites the `split` column of `rows` from a CSV with `idColumn` and `split` columns. */
export async function joinSplits(
  rows: ShardRow[],
  splitsAbs: string,
  splitsShown: string,
  idColumn: string,
): Promise<ShardRow[]> {
  let records: Record<string, string>[];
  try {
    records = parse(await readStageInput(splitsAbs, 'the splits CSV', splitsShown), { columns: true, skip_empty_lines: true }) as Record<string, string>[];
  } catch (e) {
    const err = e as { lines?: number; message?: string };
    throw new RowSetError(`cannot read the splits CSV ${splitsShown}${err.lines ? ` (line ${err.lines})` : ''}: ${err.message ?? String(e)}`);
  }
  const first = records[0];
  if (first === undefined) throw new RowSetError(`the splits CSV ${splitsShown} has no rows`);
  for (const c of [idColumn, 'split']) {
    if (!(c in first)) {
      throw new RowSetError(
        `the splits CSV ${splitsShown} has no "${c}" column (line 1 has: ${Object.keys(first).join(', ')}); ` +
          `set id_column to the column that names an image in both the shards' rows.csv and this file`,
      );
    }
  }
  const split = new Map<string, string>();
  for (const r of records) split.set(r[idColumn]!, r['split']!);
  if (rows.length > 0 && !(idColumn in rows[0]!)) {
    throw new RowSetError(`the shard set's rows.csv has no "${idColumn}" column to join the splits CSV ${splitsShown} on`);
  }
  return rows.map((r) => ({ ...r, split: split.get(r[idColumn]!) ?? '' }));
}

/** Indices of rows whose split is one of `splits` (all rows when `splits` is empty). */
export function selectSplit(rows: readonly ShardRow[], splits: readonly string[]): number[] {
  const out: number[] = [];
  const want = new Set(splits);
  for (let i = 0; i < rows.length; i++) if (want.size === 0 || want.has(rows[i]!['split'] ?? '')) out.push(i);
  return out;
}

/** Parses a label cell: "1"/"1.0"/"True" → 1, "0"/"0.0"/"False" → 0, anything else (−1, empty, uncertain) → −1. */
export function parseLabel(v: string | undefined): number {
  const t = (v ?? '').trim().toLowerCase();
  if (t === 'true') return 1;
  if (t === 'false') return 0;
  const n = Number(t);
  if (t === '' || !Number.isFinite(n)) return -1;
  return n === 1 ? 1 : n === 0 ? 0 : -1;
}

/**
 * METHODS C.4 `filter_negative`: keep cardiomegaly-positive rows and rows without any finding; rows with another
 * finding but no cardiomegaly, and rows whose label is −1/missing, are dropped from training and validation.
 */
export function trainable(row: ShardRow, labelColumn: string, filterNegative: boolean): boolean {
  const label = parseLabel(row[labelColumn]);
  if (label < 0) return false;
  if (!filterNegative || label === 1) return true;
  const has = row['Has Finding'];
  return has === undefined || parseLabel(has) === 0;
}

/** The shard set a training or inference stage reads; an unreadable one is the stage's error, naming the path. */
export async function openStageShards(ctx: Pick<StageContext, 'stage' | 'resolve'>, relPath: string): Promise<ShardSet> {
  try {
    return await openShards(ctx.resolve(relPath));
  } catch (e) {
    throw new StageError(`stage ${ctx.stage}: cannot open the shard set ${relPath}: ${(e as Error).message}`);
  }
}
