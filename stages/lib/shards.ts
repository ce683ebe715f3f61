/**
 * The packed tensor shard format: preprocessed grayscale images that training streams without decoding PNGs again.
 *
 * A shard set is a directory:
 *   index.json        ShardIndex (geometry, shard list, pixel mean/std over the set, metadata columns)
 *   shard-00000.bin   raw uint8 pixels, image after image, each H×W row-major (≤ maxShardBytes per file)
 *   rows.csv          one metadata row per image, in the same order as the pixels
 *
 * Image i lives in the shard whose cumulative count covers i, at byte offset (i − first) × H × W. Reads are random
 * access through file handles, so a sampler can draw any batch without loading the set into memory.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { open, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { replaceDir, stagingDirBeside } from './atomic-write.js';
import { readStageInput } from '../../engine/stage-api.js';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';

export const SHARD_FORMAT_VERSION = 1;
/** Default bound on one shard file; small enough to copy/cache comfortably, large enough to keep file counts low. */
export const DEFAULT_MAX_SHARD_BYTES = 64 * 1024 * 1024;

export interface ShardIndex {
  version: number;
  width: number;
  height: number;
  channels: 1;
  dtype: 'uint8';
  count: number;
  shards: Array<{ file: string; count: number }>;
  /** Mean and standard deviation of all pixel values scaled to [0, 1], over the whole set (normalisation stats). */
  mean: number;
  std: number;
  /** Columns of rows.csv, in order. */
  columns: string[];
}

/** One metadata row; values are strings as they appear in rows.csv. */
export type ShardRow = Record<string, string>;

export interface ShardGeometry {
  width: number;
  height: number;
  /** Upper bound on a shard file's size (default 64 MiB); rounded down to whole images, at least one. */
  maxShardBytes?: number;
  /** Column order of rows.csv; default: keys of the first row, then any new keys in order of appearance. */
  columns?: string[];
}

/** A readable shard set: what training and inference consume. */
export interface ShardSet {
  readonly index: ShardIndex;
  readonly rows: ShardRow[];
  /** Pixels of the given images, concatenated in the order given (length = indices.length × H × W). */
  readBatch(indices: readonly number[]): Promise<Uint8Array>;
  /** Release file handles (a no-op for in-memory sets). */
  close(): Promise<void>;
}

const shardName = (i: number): string => `shard-${String(i).padStart(5, '0')}.bin`;
const SHARD_FILE = /^shard-\d{5,}\.bin$/;

/** Running sum and sum of squares of pixel values; doubles are exact far beyond any realistic set size. */
class PixelStats {
  private sum = 0;
  private sumSq = 0;
  private n = 0;
  private readonly hist = new Float64Array(256);
  add(px: Uint8Array): void {
    const h = this.hist;
    for (let i = 0; i < px.length; i++) h[px[i]!]!++;
    this.n += px.length;
  }
  result(): { mean: number; std: number } {
    // Histogram first, then moments: avoids 2 float ops per pixel in the hot loop and is exact.
    this.sum = 0;
    this.sumSq = 0;
    for (let v = 0; v < 256; v++) {
      const c = this.hist[v]!;
      this.sum += c * v;
      this.sumSq += c * v * v;
    }
    if (this.n === 0) return { mean: 0, std: 0 };
    const mean = this.sum / this.n;
    const variance = Math.max(0, this.sumSq / this.n - mean * mean);
    return { mean: mean / 255, std: Math.sqrt(variance) / 255 };
  }
}

function orderColumns(rows: readonly ShardRow[], given?: string[]): string[] {
  if (given) return given;
  const cols: string[] = [];
  const seen = new Set<string>();
  for (const r of rows)
    for (const k of Object.keys(r))
      if (!seen.has(k)) {
        seen.add(k);
        cols.push(k);
      }
  return cols;
}

/**
 * Streaming writer: append images one at a time (in final order), then finish(). Writes into a sibling temporary
 * directory and renames it into place, so a crash never leaves a half-written set at `dir`.
 */
export class ShardWriter {
  private tmpDir = '';
  private readonly imageBytes: number;
  private readonly perShard: number;
  private readonly stats = new PixelStats();
  private readonly rows: ShardRow[] = [];
  private readonly shards: Array<{ file: string; count: number }> = [];
  private stream: WriteStream | null = null;
  private ready: Promise<void> | null = null;
  /** A write error (ENOSPC, EIO) the stream reported; the next append/finish throws it. */
  private failure: Error | null = null;

  constructor(
    readonly dir: string,
    private readonly geometry: ShardGeometry,
  ) {
    if (!Number.isInteger(geometry.width) || !Number.isInteger(geometry.height) || geometry.width < 1 || geometry.height < 1)
      throw new Error(`shards: width and height must be positive integers (got ${geometry.width}×${geometry.height})`);
    this.imageBytes = geometry.width * geometry.height;
    this.perShard = Math.max(1, Math.floor((geometry.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES) / this.imageBytes));
  }

  get count(): number {
    return this.rows.length;
  }

  private async init(): Promise<void> {
    this.tmpDir = await stagingDirBeside(this.dir);
  }

  /** Add one image (exactly width × height bytes) with its metadata row. */
  async append(row: ShardRow, pixels: Uint8Array): Promise<void> {
    if (pixels.length !== this.imageBytes)
      throw new Error(
        `shards: image ${this.rows.length} has ${pixels.length} bytes, expected ${this.geometry.width}×${this.geometry.height} = ${this.imageBytes}`,
      );
    this.ready ??= this.init();
    await this.ready;
    const last = this.shards[this.shards.length - 1];
    if (!this.stream || !last || last.count >= this.perShard) {
      await this.closeStream();
      const file = shardName(this.shards.length);
      this.shards.push({ file, count: 0 });
      this.stream = createWriteStream(join(this.tmpDir, file));
      this.stream.on('error', (e) => {
        this.failure ??= e;
      });
    }
    if (this.failure) throw this.failure;
    this.stats.add(pixels);
    this.rows.push(row);
    this.shards[this.shards.length - 1]!.count++;
    // Copy: callers may reuse their buffer; respect backpressure so memory stays bounded.
    if (!this.stream.write(Buffer.from(pixels))) {
      const stream = this.stream;
      await new Promise<void>((res, rej) => {
        const onError = (e: Error): void => {
          stream.off('drain', onDrain);
          rej(e);
        };
        const onDrain = (): void => {
          stream.off('error', onError);
          res();
        };
        stream.once('drain', onDrain);
        stream.once('error', onError);
      });
    }
  }

  private async closeStream(): Promise<void> {
    const s = this.stream;
    this.stream = null;
    if (!s) return;
    if (this.failure) {
      s.destroy();
      throw this.failure;
    }
    await new Promise<void>((res, rej) => {
      s.once('error', rej);
      s.end(() => res());
    });
  }

  /** Write index.json and rows.csv and move the set into place (replacing any previous set at `dir`). */
  async finish(): Promise<ShardIndex> {
    this.ready ??= this.init();
    await this.ready;
    await this.closeStream();
    const columns = orderColumns(this.rows, this.geometry.columns);
    const { mean, std } = this.stats.result();
    const index: ShardIndex = {
      version: SHARD_FORMAT_VERSION,
      width: this.geometry.width,
      height: this.geometry.height,
      channels: 1,
      dtype: 'uint8',
      count: this.rows.length,
      shards: this.shards,
      mean,
      std,
      columns,
    };
    const csv = stringify(
      this.rows.map((r) => columns.map((c) => r[c] ?? '')),
      { header: true, columns },
    );
    await writeFile(join(this.tmpDir, 'rows.csv'), csv);
    await writeFile(join(this.tmpDir, 'index.json'), JSON.stringify(index, null, 2) + '\n');
    await replaceDir(this.tmpDir, this.dir);
    return index;
  }

  /** Drop the partial set (after an error or cancellation). */
  async abort(): Promise<void> {
    await this.closeStream().catch(() => undefined);
    this.stream?.destroy();
    await this.ready?.catch(() => undefined); // a staging folder still being made is removed too
    if (this.tmpDir) await rm(this.tmpDir, { recursive: true, force: true });
  }
}

/**
 * Write a shard set from rows and their pixels (same order). `pixels` may be an array, a generator or an async
 * generator, so callers can decode lazily.
 */
export async function writeShards(
  dir: string,
  geometry: ShardGeometry,
  rows: readonly ShardRow[],
  pixels: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
): Promise<ShardIndex> {
  const w = new ShardWriter(dir, { ...geometry, columns: geometry.columns ?? orderColumns(rows) });
  let i = 0;
  try {
    for await (const px of pixels) {
      const row = rows[i];
      if (!row) throw new Error(`shards: more images than rows (${rows.length})`);
      await w.append(row, px);
      i++;
    }
    if (i !== rows.length) throw new Error(`shards: ${rows.length} rows but ${i} images`);
    return await w.finish();
  } catch (e) {
    await w.abort();
    throw e;
  }
}

function validateIndex(raw: unknown, file: string): ShardIndex {
  const x = raw as Partial<ShardIndex>;
  const bad = (what: string): never => {
    throw new Error(`${file}: not a shard index (${what})`);
  };
  if (typeof x !== 'object' || x === null) bad('not an object');
  if (x.version !== SHARD_FORMAT_VERSION) bad(`version ${String(x.version)}, expected ${SHARD_FORMAT_VERSION}`);
  if (!Number.isInteger(x.width) || !Number.isInteger(x.height) || x.width! < 1 || x.height! < 1) bad('width/height');
  if (x.channels !== 1 || x.dtype !== 'uint8') bad('only 1-channel uint8 is supported');
  if (!Array.isArray(x.shards)) bad('shards');
  for (const sh of x.shards!) {
    // Shard files are names inside the set's directory; anything else (a path, `..`) would read outside it.
    if (typeof sh?.file !== 'string' || !SHARD_FILE.test(sh.file)) bad(`shard file ${JSON.stringify(sh?.file)} is not a shard-NNNNN.bin name`);
    if (!Number.isInteger(sh.count) || sh.count < 0) bad(`shard ${sh.file} has count ${String(sh.count)}`);
  }
  const total = x.shards!.reduce((s, sh) => s + sh.count, 0);
  if (total !== x.count) bad(`shard counts sum to ${total}, count is ${String(x.count)}`);
  return x as ShardIndex;
}

/** Locate image i: which shard, and the image's position inside it. */
function locator(index: ShardIndex): (i: number) => { shard: number; offset: number } {
  const starts: number[] = [];
  let acc = 0;
  for (const s of index.shards) {
    starts.push(acc);
    acc += s.count;
  }
  return (i) => {
    if (!Number.isInteger(i) || i < 0 || i >= index.count)
      throw new RangeError(`shards: image index ${i} out of range [0, ${index.count})`);
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= i) lo = mid;
      else hi = mid - 1;
    }
    return { shard: lo, offset: i - starts[lo]! };
  };
}

/** Open a shard set for random-access reads. Call close() when done. */
export async function openShards(dir: string): Promise<ShardSet> {
  const indexFile = join(dir, 'index.json');
  const index = validateIndex(JSON.parse((await readStageInput(indexFile, 'the shard index')).toString('utf8')), indexFile);
  const rows = parse(await readStageInput(join(dir, 'rows.csv'), 'the shard rows'), { columns: true, skip_empty_lines: true }) as ShardRow[];
  if (rows.length !== index.count)
    throw new Error(`${join(dir, 'rows.csv')}: ${rows.length} rows, index.json says ${index.count} images`);
  const imageBytes = index.width * index.height;
  const locate = locator(index);
  const handles = new Map<number, Promise<FileHandle>>();
  const handle = (s: number): Promise<FileHandle> => {
    let h = handles.get(s);
    if (!h) {
      h = open(join(dir, index.shards[s]!.file), 'r');
      handles.set(s, h);
    }
    return h;
  };
  return {
    index,
    rows,
    async readBatch(indices) {
      const out = new Uint8Array(indices.length * imageBytes);
      await Promise.all(
        indices.map(async (i, k) => {
          const { shard, offset } = locate(i);
          const fh = await handle(shard);
          const { bytesRead } = await fh.read(out, k * imageBytes, imageBytes, offset * imageBytes);
          if (bytesRead !== imageBytes)
            throw new Error(`${join(dir, index.shards[shard]!.file)}: truncated (image ${i} incomplete)`);
        }),
      );
      return out;
    },
    async close() {
      const hs = [...handles.values()];
      handles.clear();
      await Promise.all(hs.map(async (h) => (await h).close()));
    },
  };
}

/**
 * In-memory shard set with the same interface, for tests: `memoryShards({width, height}, rows, images)`.
 * Computes mean/std exactly as writeShards does.
 */
export function memoryShards(geometry: ShardGeometry, rows: ShardRow[], images: Uint8Array[]): ShardSet {
  const imageBytes = geometry.width * geometry.height;
  if (rows.length !== images.length) throw new Error(`shards: ${rows.length} rows but ${images.length} images`);
  const stats = new PixelStats();
  for (const [i, px] of images.entries()) {
    if (px.length !== imageBytes) throw new Error(`shards: image ${i} has ${px.length} bytes, expected ${imageBytes}`);
    stats.add(px);
  }
  const { mean, std } = stats.result();
  const index: ShardIndex = {
    version: SHARD_FORMAT_VERSION,
    width: geometry.width,
    height: geometry.height,
    channels: 1,
    dtype: 'uint8',
    count: rows.length,
    shards: [{ file: '(memory)', count: rows.length }],
    mean,
    std,
    columns: orderColumns(rows, geometry.columns),
  };
  return {
    index,
    rows,
    async readBatch(indices) {
      const out = new Uint8Array(indices.length * imageBytes);
      indices.forEach((i, k) => {
        const px = images[i];
        if (!px) throw new RangeError(`shards: image index ${i} out of range [0, ${images.length})`);
        out.set(px, k * imageBytes);
      });
      return out;
    },
    async close() {},
  };
}
