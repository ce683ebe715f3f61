import { availableParallelism } from 'node:os';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { StageError, type StageContext } from '../../../engine/stage-api.js';
import {
  DatasetPaths,
  METADATA_LAYOUTS,
  parseCsvLines,
  readDatasetMetadata,
  type MetaRow,
  type MetadataLayout,
} from '../../lib/metadata.js';
import { ShardWriter } from '../../lib/shards.js';
import { manifest } from './manifest.js';
import { LoadPool, loadInOrder } from './pool.js';

export interface PreprocessWith {
  dataset: string;
  layout: MetadataLayout | 'table';
  metadata?: string;
  out: string;
  size: number;
  skip_unreadable: boolean;
  max_image_pixels?: number;
}

/** Largest metadata table read (a bound on memory; the biggest real one, PadChest's, is ~60 MB unzipped). */
const MAX_TABLE_BYTES = 1024 * 1024 * 1024;

async function readTable(stage: string, file: string, shown: string, guard: DatasetPaths): Promise<{ rows: MetaRow[]; columns: string[]; files: string[] }> {
  if (!existsSync(file)) throw new StageError(`stage ${stage}: with.metadata ${shown} does not exist.`);
  const { size } = await stat(file);
  if (size > MAX_TABLE_BYTES) throw new StageError(`stage ${stage}: with.metadata ${shown} is ${size} bytes, more than the ${MAX_TABLE_BYTES}-byte limit for a metadata table.`);
  let parsed: ReturnType<typeof parseCsvLines>;
  try {
    parsed = parseCsvLines(await readFile(file), shown);
  } catch (e) {
    throw new StageError(`stage ${stage}: with.metadata ${shown} is not valid CSV: ${(e as Error).message}.`);
  }
  const [columns = [], ...records] = parsed.records;
  if (!columns.includes('path'))
    throw new StageError(`stage ${stage}: ${shown} has no "path" column (image paths relative to with.dataset are required).`);
  const rows = records.map((r): MetaRow => Object.fromEntries(columns.map((c, i) => [c, r[i] ?? ''])));
  const files = guard.resolveAll(rows.map((r) => r['path']!), parsed.sources.slice(1));
  if (!files.ok) throw new StageError(`stage ${stage}: ${files.error}.`);
  return { rows, columns, files: files.value };
}

/** A failure to write the shard set (not to load an image): a full disk is the expected one. */
function writeFailure(stage: string, out: string, e: unknown): Error {
  const err = e as NodeJS.ErrnoException;
  if (err.code === 'ENOSPC') return new StageError(`stage ${stage}: no space left on the device while writing ${out} (ENOSPC); free some space and run again.`);
  if (typeof err.code === 'string') return new StageError(`stage ${stage}: cannot write the shard set ${out}: ${err.message}.`);
  return err instanceof Error ? err : new Error(String(e));
}

export async function run(ctx: StageContext<PreprocessWith>): Promise<void> {
  const w = ctx.with;
  if (!Number.isInteger(w.size) || w.size < 8 || w.size > 2048)
    throw new StageError(`stage ${ctx.stage}: with.size must be an integer in [8, 2048] (got ${w.size}).`);
  // Direct callers (tests, benches) may leave it out; the engine always fills the manifest's default in.
  const maxPixels = w.max_image_pixels ?? (manifest.with['max_image_pixels']!.default as number);
  if (!Number.isInteger(maxPixels) || maxPixels < 1)
    throw new StageError(`stage ${ctx.stage}: with.max_image_pixels must be a positive integer (got ${maxPixels}).`);
  const root = ctx.resolve(w.dataset);
  if (!existsSync(root)) throw new StageError(`stage ${ctx.stage}: with.dataset ${w.dataset} does not exist.`);
  const guard = new DatasetPaths(root);

  let rows: MetaRow[];
  let columns: string[];
  let files: string[];
  if (w.layout === 'table') {
    if (!w.metadata) throw new StageError(`stage ${ctx.stage}: layout "table" needs with.metadata (a CSV with a path column).`);
    ({ rows, columns, files } = await readTable(ctx.stage, ctx.resolve(w.metadata), w.metadata, guard));
  } else {
    if (!METADATA_LAYOUTS.includes(w.layout))
      throw new StageError(`stage ${ctx.stage}: with.layout must be one of ${[...METADATA_LAYOUTS, 'table'].join(', ')} (got ${String(w.layout)}).`);
    const meta = await readDatasetMetadata(root, w.layout);
    if (!meta.ok) throw new StageError(`stage ${ctx.stage}: cannot read the ${w.layout} metadata: ${meta.error}.`);
    ({ rows, columns, files } = meta.value);
    for (const [why, n] of Object.entries(meta.value.dropped)) ctx.log(`metadata: ${n} row(s): ${why}`);
  }
  if (rows.length === 0) throw new StageError(`stage ${ctx.stage}: no images listed in ${w.dataset} (layout ${w.layout}).`);
  const present = files.map((f) => existsSync(f));
  const missing = rows.filter((_, i) => !present[i]);
  if (missing.length && !w.skip_unreadable)
    throw new StageError(
      `stage ${ctx.stage}: ${missing.length} image file(s) listed in the metadata are missing under ${w.dataset}, ` +
        `e.g. ${missing[0]!['path']}. Complete the download, or set skip_unreadable: true to drop them.`,
    );
  if (missing.length) {
    ctx.log(`skipping ${missing.length} missing image file(s), e.g. ${missing[0]!['path']}`);
    rows = rows.filter((_, i) => present[i]);
    files = files.filter((_, i) => present[i]);
  }

  const workers = Math.max(1, Math.min(ctx.resources.cpus || 1, availableParallelism(), rows.length));
  ctx.log(`preprocessing ${rows.length} images to ${w.size}×${w.size} with ${workers} worker thread(s)`);
  ctx.record({ preprocess: { images: rows.length, size: w.size } });
  ctx.recordExecution({ workers });
  const pool = new LoadPool(workers, maxPixels);
  const writer = new ShardWriter(ctx.resolve(w.out), { width: w.size, height: w.size, columns });
  const started = Date.now();
  let done = 0;
  let skipped = 0;
  try {
    // Errors for one image arrive in order; with skip_unreadable we restart the stream after the bad file.
    let from = 0;
    while (from < files.length) {
      let i = from;
      try {
        for await (const px of loadInOrder(pool, files.slice(from), w.size, workers * 2)) {
          if (ctx.signal.aborted) throw new StageError(`stage ${ctx.stage}: cancelled.`);
          await writer.append(rows[i]!, px).catch((e: unknown) => {
            throw writeFailure(ctx.stage, w.out, e);
          });
          i++;
          done++;
          if (done % 25 === 0 || done === rows.length) {
            const rate = done / Math.max(0.001, (Date.now() - started) / 1000);
            ctx.progress({ done, total: rows.length, unit: 'images', message: `${rate.toFixed(0)} img/s` });
          }
        }
        from = files.length;
      } catch (e) {
        if (e instanceof StageError) throw e;
        if (!w.skip_unreadable)
          throw new StageError(
            `stage ${ctx.stage}: cannot load image ${i + 1} of ${rows.length}: ${(e as Error).message}. ` +
              `Set skip_unreadable: true to drop unreadable images${/pixels, more than the limit/.test((e as Error).message) ? ', or raise with.max_image_pixels' : ''}.`,
          );
        ctx.log(`skipping unreadable image: ${(e as Error).message}`);
        skipped++;
        from = i + 1;
      }
    }
    if (writer.count === 0) throw new StageError(`stage ${ctx.stage}: no image could be loaded.`);
    const index = await writer.finish().catch((e: unknown) => {
      throw writeFailure(ctx.stage, w.out, e);
    });
    const secs = (Date.now() - started) / 1000;
    ctx.record({ preprocess: { images: index.count, skipped, size: w.size, mean: index.mean, std: index.std } });
    ctx.log(
      `wrote ${index.count} images in ${index.shards.length} shard(s) to ${w.out} ` +
        `(${(index.count / Math.max(secs, 0.001)).toFixed(1)} img/s; mean ${index.mean.toFixed(4)}, std ${index.std.toFixed(4)})`,
    );
  } catch (e) {
    await writer.abort();
    throw e;
  } finally {
    await pool.close();
  }
}
