/**
 * Content hashing: streaming sha256 of files and sha256 of canonical JSON. Canonical JSON (sorted keys, no spaces)
 * makes a hash independent of property insertion order, so StageKeys and directory manifests are stable across
 * processes and versions of the code that build the same value in a different order.
 */
import { createHash } from 'node:crypto';
import { closeSync, readSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { asHash } from './brand.js';
import { CacheError } from './errors.js';
import { openIfRegular, openIfRegularSync } from './read.js';
import type { Hash } from './types.js';

/** Files up to this size are read in one call: far cheaper than a stream for the many small files of a dataset. */
const WHOLE_READ_MAX = 4 * 1024 * 1024;

/** sha256 of a file's bytes, streamed so a multi-GB file never sits in memory. */
export async function hashFile(absPath: string): Promise<Hash> {
  const h = createHash('sha256');
  const stream = (await openRegular(absPath)).createReadStream({ highWaterMark: 1024 * 1024 });
  for await (const chunk of stream) h.update(chunk as Buffer);
  return asHash(h.digest('hex'));
}

/*
 * Content is read only from a regular file, checked on the open descriptor (cache/read.ts openIfRegularSync). Every
 * caller has seen a regular file in a stat just before, but a running stage can put a FIFO or a device at that name
 * in between: a plain open of a FIFO waits for a writer that never comes (a synchronous one blocks pipe's only
 * thread, Ctrl-C included), and a device reads forever.
 */
function notRegular(absPath: string): CacheError {
  return new CacheError(`${absPath} is not a regular file (it was replaced while pipe read it); pipe reads only regular files.`, 'special-file', absPath);
}

/** A descriptor of `absPath` for reading, when it is a regular file (else a CacheError, 'special-file'). */
export function openRegularSync(absPath: string): number {
  const opened = openIfRegularSync(absPath);
  if (!opened) throw notRegular(absPath);
  return opened.fd;
}

/** openRegularSync, for the asynchronous readers (streams of large files). */
export async function openRegular(absPath: string): Promise<FileHandle> {
  const opened = await openIfRegular(absPath);
  if (!opened) throw notRegular(absPath);
  return opened.fh;
}

/**
 * Synchronous hash of a small file (`size` from its stat) read into `buf` (default: one process-wide buffer).
 * Measured ~5x less CPU per file than any promise/callback variant on a fresh 100,000-file tree (docs/cache.md),
 * which matters on 2 cores. Returns undefined if the file is larger than its stat said (being written) or than the
 * buffer: the caller streams it instead.
 */
export function hashSmallFileSync(absPath: string, size: number, buf: Buffer = sharedBuffer()): Hash | undefined {
  if (size + 1 > buf.length) return undefined;
  const fd = openRegularSync(absPath);
  let got = 0;
  try {
    for (;;) {
      const n = readSync(fd, buf, got, Math.min(size + 1, buf.length) - got, null);
      got += n;
      if (n === 0 || got > size) break;
    }
  } finally {
    closeSync(fd);
  }
  return got > size ? undefined : hashBytes(buf.subarray(0, got));
}

/** Largest file hashed synchronously; callers size their buffer with this. */
export const SYNC_READ_MAX = WHOLE_READ_MAX;

/**
 * One read buffer for the whole process, allocated on first use. Reads into it are synchronous and hashed before
 * returning, so nothing can share it concurrently; a fresh 4 MiB buffer per call made V8 run a mark-compact every
 * ~70 ms on a 1,000-stage first run (external memory pressure).
 */
let shared: Buffer | undefined;
function sharedBuffer(): Buffer {
  return (shared ??= Buffer.allocUnsafe(SYNC_READ_MAX + 1));
}


export function hashBytes(bytes: Uint8Array | string): Hash {
  return asHash(createHash('sha256').update(bytes).digest('hex'));
}

/** sha256 of canonicalJson(value). Synchronous: the engine computes thousands of keys on a no-op run. */
export function hashJson(value: unknown): Hash {
  return hashBytes(canonicalJson(value));
}

/**
 * JSON with object keys sorted (by UTF-16 code unit, i.e. JS default sort) and no whitespace. Follows
 * JSON.stringify's semantics otherwise (toJSON is honoured, undefined/function properties are dropped, undefined in
 * arrays becomes null), except that non-finite numbers and bigints are rejected: a NaN or a bigint in a key is a
 * bug we would rather see than hash as `null`.
 */
export function canonicalJson(value: unknown): string {
  let out: string | undefined;
  try {
    out = write(value);
  } catch (e) {
    // The hot path keeps no path (one string per value of every key); a refused value is located on a second walk.
    if (e instanceof NotJson) throw new TypeError(`canonicalJson: ${e.message} at ${whereNotJson(value, '') ?? '<root>'}`);
    throw e;
  }
  if (out === undefined) throw new TypeError('canonicalJson: value is not JSON-serialisable (undefined/function)');
  return out;
}

/** A value canonical JSON refuses (message without its location). */
class NotJson extends Error {}

function write(value: unknown): string | undefined {
  if (value === null) return 'null';
  if (typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    value = (value as { toJSON: (k: string) => unknown }).toJSON('');
  }
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new NotJson('non-finite number');
      // What JSON.stringify writes for a finite number (ECMA-262 SerializeJSONProperty: ToString).
      return String(value);
    case 'bigint':
      throw new NotJson('bigint');
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
  }
  if (value === null) return 'null';
  if (Array.isArray(value)) {
    let s = '[';
    for (let i = 0; i < value.length; i++) s += `${i === 0 ? '' : ','}${write(value[i]) ?? 'null'}`;
    return `${s}]`;
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  // Most objects hashed are built in key order already: a sort (and its work array) only for those that are not.
  for (let i = 1; i < keys.length; i++) {
    if (keys[i - 1]! > keys[i]!) {
      keys.sort();
      break;
    }
  }
  let s = '{';
  let first = true;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const v = write(obj[k]);
    if (v === undefined) continue;
    s += `${first ? '' : ','}${JSON.stringify(k)}:${v}`;
    first = false;
  }
  return `${s}}`;
}

/** The path (`.a.b[2]`) of the first value `write` refuses, walking as it does. */
function whereNotJson(value: unknown, path: string): string | undefined {
  if (value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    value = (value as { toJSON: (k: string) => unknown }).toJSON('');
  }
  if (typeof value === 'bigint' || (typeof value === 'number' && !Number.isFinite(value))) return path || '<root>';
  if (value === null || typeof value !== 'object') return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const at = whereNotJson(value[i], `${path}[${i}]`);
      if (at !== undefined) return at;
    }
    return undefined;
  }
  const obj = value as Record<string, unknown>;
  for (const k of Object.keys(obj).sort()) {
    const at = whereNotJson(obj[k], `${path}.${k}`);
    if (at !== undefined) return at;
  }
  return undefined;
}
