import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { parse } from 'csv-parse/sync';
import { StageError, type StageContext } from '../../../engine/stage-api.js';
import { METADATA_LAYOUTS, readDatasetMetadata, type MetaRow, type MetadataLayout } from '../../lib/metadata.js';
import { ShardWriter } from '../../lib/shards.js';
import { LoadPool, loadInOrder } from './pool.js';

export interface PreprocessWith {
  dataset: string;
  layout: MetadataLayout | 'table';
  metadata?: string;
  out: string;
  size: number;
  skip_unreadable: boolean;
}

async function readTable(stage: string, file: string): Promise<{ rows: MetaRow[]; columns: string[] }> {
  if (!existsSync(file)) throw new StageError(`stage ${stage}: with.metadata ${file} does not exist.`);
  const records = parse(await readFile(file), { columns: true, skip_empty_lines: true, bom: true }) as MetaRow[];
  const columns = records[0] ? Object.keys(records[0]) : [];
  if (!columns.includes('path'))
    throw new StageError(`stage ${stage}: ${file} has no "path" column (image paths relative to with.dataset are required).`);
  return { rows: records, columns };
}

export async function run(ctx: StageContext<PreprocessWith>): Promise<void> {
  const w = ctx.with;
  if (!Number.isInteger(w.size) || w.size < 8 || w.size > 2048)
    throw new StageError(`stage ${ctx.stage}: with.size must be an integer in [8, 2048] (got ${w.size}).`);
  const root = ctx.resolve(w.dataset);
  if (!existsSync(root)) throw new StageError(`stage ${ctx.stage}: with.dataset ${w.dataset} does not exist.`);

  let rows: MetaRow[];
  let columns: string[];
  if (w.layout === 'table') {
    if (!w.metadata) throw new StageError(`stage ${ctx.stage}: layout "table" needs with.metadata (a CSV with a path column).`);
    ({ rows, columns } = await readTable(ctx.stage, ctx.resolve(w.metadata)));
  } else {
    if (!METADATA_LAYOUTS.includes(w.layout))
      throw new StageError(`stage ${ctx.stage}: with.layout must be one of ${[...METADATA_LAYOUTS, 'table'].join(', ')} (got ${String(w.layout)}).`);
    const meta = await readDatasetMetadata(root, w.layout);
    if (!meta.ok) throw new StageError(`stage ${ctx.stage}: cannot read the ${w.layout} metadata: ${meta.error}.`);
    ({ rows, columns } = meta.value);
    for (const [why, n] of Object.entries(meta.value.dropped)) ctx.log(`metadata: ${n} row(s): ${why}`);
  }
  if (rows.length === 0) throw new StageError(`stage ${ctx.stage}: no images listed in ${w.dataset} (layout ${w.layout}).`);
  const missing = rows.filter((r) => !existsSync(join(root, r['path'] ?? '')));
  if (missing.length && !w.skip_unreadable)
    throw new StageError(
      `stage ${ctx.stage}: ${missing.length} image file(s) listed in the metadata are missing under ${w.dataset}, ` +
        `e.g. ${missing[0]!['path']}. Complete the download, or set skip_unreadable: true to drop them.`,
    );
  if (missing.length) {
    ctx.log(`skipping ${missing.length} missing image file(s), e.g. ${missing[0]!['path']}`);
    rows = rows.filter((r) => existsSync(join(root, r['path'] ?? '')));
  }

  const workers = Math.max(1, Math.min(ctx.resources.cpus || 1, availableParallelism(), rows.length));
  ctx.log(`preprocessing ${rows.length} images to ${w.size}×${w.size} with ${workers} worker thread(s)`);
  ctx.record({ preprocess: { images: rows.length, size: w.size, workers } });
  const pool = new LoadPool(workers);
  const writer = new ShardWriter(ctx.resolve(w.out), { width: w.size, height: w.size, columns });
  const files = rows.map((r) => join(root, r['path']!));
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
          await writer.append(rows[i]!, px);
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
              `Set skip_unreadable: true to drop unreadable images.`,
          );
        ctx.log(`skipping unreadable image: ${(e as Error).message}`);
        skipped++;
        from = i + 1;
      }
    }
    if (writer.count === 0) throw new StageError(`stage ${ctx.stage}: no image could be loaded.`);
    const index = await writer.finish();
    const secs = (Date.now() - started) / 1000;
    ctx.record({ preprocess: { images: index.count, skipped, size: w.size, workers, mean: index.mean, std: index.std } });
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
