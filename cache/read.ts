/**
 * Reading what others may have written: a store shared by several workspaces (run records, disagreements, the
 * registry), the files its registry names (another workspace's `workspace.json` and lock files), and the files one
 * stage reads that another wrote. Anyone who can write there can plant a FIFO or a device, which a plain read would
 * block on (or read) forever, or a file larger than memory.
 *
 * This file imports nothing but Node.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/** What a bounded read found: the bytes, or why there are none. */
export type BoundedRead =
  | { ok: true; bytes: Buffer }
  | { ok: false; why: 'missing' | 'unreadable' | 'not-a-file' }
  | { ok: false; why: 'too-large'; size: number };

const MISSING = new Set(['ENOENT', 'ENOTDIR']);
const UNREADABLE = new Set(['ENXIO', 'EACCES']);

/**
 * `path` opened for reading with its stat, when it is a regular file; undefined (and closed) when it is anything
 * else. Opened non-blocking, so a FIFO opens at once and is refused instead of waited on (no effect on a regular
 * file); `noFollow` refuses a link at `path` too (ELOOP, thrown). Errors of the open itself are thrown.
 */
export function openIfRegularSync(path: string, opts: { noFollow?: boolean } = {}): { fd: number; st: Stats } | undefined {
  const fd = openSync(path, readFlags(opts.noFollow));
  let st: Stats | undefined;
  try {
    st = fstatSync(fd);
  } finally {
    if (!st?.isFile()) closeSync(fd);
  }
  return st.isFile() ? { fd, st } : undefined;
}

/** openIfRegularSync, asynchronously. */
export async function openIfRegular(path: string, opts: { noFollow?: boolean } = {}): Promise<{ fh: FileHandle; st: Stats } | undefined> {
  const fh = await open(path, readFlags(opts.noFollow));
  let st: Stats | undefined;
  try {
    st = await fh.stat();
  } finally {
    if (!st?.isFile()) await fh.close();
  }
  return st.isFile() ? { fh, st } : undefined;
}

function readFlags(noFollow: boolean | undefined): number {
  return constants.O_RDONLY | constants.O_NONBLOCK | (noFollow ? constants.O_NOFOLLOW : 0);
}

function openFailure(e: unknown): BoundedRead {
  const code = (e as NodeJS.ErrnoException).code ?? '';
  if (MISSING.has(code)) return { ok: false, why: 'missing' };
  if (UNREADABLE.has(code)) return { ok: false, why: 'unreadable' };
  throw e;
}

/**
 * The bytes of `path` when it is a regular file of at most `maxBytes`. The file is opened non-blocking and checked
 * before reading (a FIFO or device is never read). One that grows while it is read (being written) is read on, and
 * is too large only once it passes the bound.
 */
export async function readBounded(path: string, maxBytes: number): Promise<BoundedRead> {
  let opened;
  try {
    opened = await openIfRegular(path);
  } catch (e) {
    return openFailure(e);
  }
  if (!opened) return { ok: false, why: 'not-a-file' };
  const { fh, st } = opened;
  try {
    if (st.size > maxBytes) return { ok: false, why: 'too-large', size: st.size };
    let buf: Buffer = Buffer.alloc(st.size + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n === buf.length) {
        if (n > maxBytes) return { ok: false, why: 'too-large', size: n };
        buf = grown(buf, n, maxBytes); // grew past what stat said: read on, up to the bound
      }
    }
    return { ok: true, bytes: buf.subarray(0, n) };
  } finally {
    await fh.close();
  }
}

/** readBounded with synchronous calls (run records are small, and read by the thousand on a no-op run). */
export function readBoundedSync(path: string, maxBytes: number): BoundedRead {
  let opened;
  try {
    opened = openIfRegularSync(path);
  } catch (e) {
    return openFailure(e);
  }
  if (!opened) return { ok: false, why: 'not-a-file' };
  const { fd, st } = opened;
  try {
    if (st.size > maxBytes) return { ok: false, why: 'too-large', size: st.size };
    let buf: Buffer = Buffer.alloc(st.size + 1);
    let n = 0;
    for (;;) {
      const bytesRead = readSync(fd, buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n === buf.length) {
        if (n > maxBytes) return { ok: false, why: 'too-large', size: n };
        buf = grown(buf, n, maxBytes);
      }
    }
    return { ok: true, bytes: buf.subarray(0, n) };
  } finally {
    closeSync(fd);
  }
}

/** A buffer holding the `n` bytes of `buf` with room to read more: twice as large, at most one byte past `maxBytes`. */
function grown(buf: Buffer, n: number, maxBytes: number): Buffer {
  const next = Buffer.alloc(Math.min(Math.max(2 * buf.length, 64), maxBytes + 1));
  buf.copy(next, 0, 0, n);
  return next;
}

/** The text of `path` when readBounded finds a regular file within the bound, else undefined (whatever the reason). */
export async function readRegularFile(path: string, maxBytes: number): Promise<string | undefined> {
  const r = await readBounded(path, maxBytes);
  return r.ok ? r.bytes.toString('utf8') : undefined;
}

/** Why a bounded read found no bytes, in a few words: "missing", "unreadable", "not a regular file", "N bytes". */
export function unreadText(r: Exclude<BoundedRead, { ok: true }>): string {
  return r.why === 'too-large' ? `${r.size} bytes` : r.why === 'not-a-file' ? 'not a regular file' : r.why;
}

/** readRegularFile with synchronous calls. */
export function readRegularFileSync(path: string, maxBytes: number): string | undefined {
  const r = readBoundedSync(path, maxBytes);
  return r.ok ? r.bytes.toString('utf8') : undefined;
}

/** The end of a file: its last bytes, and how many bytes before them were left out. */
export interface Tail {
  bytes: Buffer;
  skipped: number;
}

/**
 * The last `maxBytes` of `path` when it is a regular file, else undefined (missing, a link, a FIFO, a device,
 * unreadable). Opened non-blocking and without following a link: logs are written by the jobs themselves, and a log
 * turned into a link must not have pipe show a file from outside the workspace.
 */
export function readTailSync(path: string, maxBytes: number): Tail | undefined {
  let opened;
  try {
    opened = openIfRegularSync(path, { noFollow: true });
  } catch {
    return undefined;
  }
  if (!opened) return undefined;
  const { fd, st } = opened;
  try {
    const skipped = Math.max(0, st.size - maxBytes);
    const buf = Buffer.alloc(Math.min(st.size, maxBytes));
    let n = 0;
    while (n < buf.length) {
      const bytesRead = readSync(fd, buf, n, buf.length - n, skipped + n);
      if (bytesRead === 0) break;
      n += bytesRead;
    }
    return { bytes: buf.subarray(0, n), skipped };
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}
