/**
 * The one atomic file write of pipe: the cache, the engine and the kinds (through engine/stage-api.ts) all write
 * whole files this way. The bytes go to a uniquely named temporary file beside the target (same filesystem), which is
 * then renamed over it: rename(2) is atomic on one filesystem (NFS included), so a reader sees the old or the new
 * file, never a torn one, and two processes writing at once each produce a whole file (the last rename wins). The
 * temporary file is removed on every error path (a full disk leaves nothing beside the target).
 *
 * `fsync`: the bytes reach the disk before the rename, so a power loss never leaves a renamed but empty file. Only
 * what cannot heal itself asks for it (a file created once and never rewritten, such as the workspace's identity):
 * at ~3 ms a call it would double the cost of a run of small stages, and everything else is either rewritten on the
 * next run or verified against its hash before use.
 *
 * Not write-file-atomic (npm): measured 5x the CPU per write of this one (it hooks every signal through signal-exit
 * and resolves the target's realpath in JavaScript on each call), and it writes through a link at the target where
 * this replaces the link.
 *
 * This file imports nothing but Node: it is part of every kind's implementation closure (engine/kinds.ts).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { link, mkdir, open, rename, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

/** What a file is written from: text, bytes, or chunks of either (written one after another, never joined). */
export type FileData = string | Uint8Array | Iterable<string | Uint8Array>;

export interface AtomicWriteOptions {
  /** Permission bits of a new file, before the umask (default 0o666, as fs.writeFile). */
  mode?: number;
  /** Flush the bytes to the disk before the rename (default false; see the file comment). */
  fsync?: boolean;
}

/**
 * A name beside `path` that no other process or call will pick: `<path>.<tag>-<pid>-<12 hex>`, 48 bits that start
 * random in each process and count up (a random draw per call cost more than the rest of writing a small record).
 */
export function tempName(path: string, tag = 'tmp'): string {
  tempCount = (tempCount + 1) % 2 ** 48;
  return `${path}.${tag}-${process.pid}-${tempCount.toString(16).padStart(12, '0')}`;
}
let tempCount = randomBytes(6).readUIntBE(0, 6);

/** A name tempName made, split: the path it was for, its tag and the pid of its writer; undefined for any other. */
export function tempOf(name: string): { of: string; tag: string; pid: number } | undefined {
  const m = /^(.+)\.([\w-]+?)-(\d+)-[0-9a-f]{12}$/.exec(name);
  return m ? { of: m[1]!, tag: m[2]!, pid: Number(m[3]) } : undefined;
}

/** Replace `path` with `data`, atomically (parent folders created). */
export async function writeFileAtomic(path: string, data: FileData, opts: AtomicWriteOptions = {}): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempName(path);
  try {
    await writeTemp(tmp, data, opts);
    await rename(tmp, path);
  } catch (e) {
    await unlinkIfPresent(tmp);
    throw e;
  }
}

/**
 * writeFileAtomic for synchronous callers (the lock file, the workspace index, the stage runner's result, run
 * records: a promise round trip per call cost ~5x the CPU of the calls themselves on a run of 1,000 trivial stages).
 * The folder is created only when the first write finds it missing.
 */
export function writeFileAtomicSync(path: string, data: FileData, opts: AtomicWriteOptions = {}): void {
  const tmp = tempName(path);
  try {
    writeTempSync(tmp, path, data, opts);
    renameSync(tmp, path);
  } catch (e) {
    unlinkIfPresentSync(tmp);
    throw e;
  }
}

/**
 * Create `path` with `data` only if it does not exist yet: false when it does (someone was first). Done as link(2)
 * of a fully written temp file, so readers never see it half written; on a filesystem without hard links, an
 * O_EXCL create (a reader may then briefly see a short file, which pipe's readers treat as absent).
 */
export async function createExclusive(path: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): Promise<boolean> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempName(path);
  try {
    await writeTemp(tmp, data, opts);
    await link(tmp, path);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (!NO_HARD_LINKS.has(code ?? '')) throw e;
  } finally {
    await unlinkIfPresent(tmp);
  }
  try {
    await writeFile(path, data, { mode: opts.mode ?? 0o666, flag: 'wx' });
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}

/** createExclusive for synchronous callers (shared run records; see writeFileAtomicSync). */
export function createExclusiveSync(path: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): boolean {
  const tmp = tempName(path);
  try {
    writeTempSync(tmp, path, data, opts);
    linkSync(tmp, path);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (!NO_HARD_LINKS.has(code ?? '')) throw e;
  } finally {
    unlinkIfPresentSync(tmp);
  }
  try {
    writeFileSync(path, data, { mode: opts.mode ?? 0o666, flag: 'wx' });
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}

/** The temp file `tmp` beside `path`, written whole (writeTemp's synchronous twin); its folder made when missing. */
function writeTempSync(tmp: string, path: string, data: FileData, opts: AtomicWriteOptions): void {
  const fd = inFolder(path, () => openSync(tmp, 'wx', opts.mode ?? 0o666));
  try {
    for (const chunk of chunksOf(data)) writeFileSync(fd, chunk);
    if (opts.fsync) fsyncSync(fd);
  } catch (e) {
    throw naming(e, tmp);
  } finally {
    closeSync(fd);
  }
}

/** Run `create` (which makes a file in `path`'s folder); when the folder is missing, make it and run it again. */
export function inFolder<T>(path: string, create: () => T): T {
  try {
    return create();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    mkdirSync(dirname(path), { recursive: true });
    return create();
  }
}

/** What link(2) says on a filesystem without hard links (some FUSE and SMB mounts). */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EMLINK']);

async function writeTemp(tmp: string, data: FileData, opts: AtomicWriteOptions): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(tmp, 'wx', opts.mode ?? 0o666);
    for (const chunk of chunksOf(data)) await fh.writeFile(chunk);
    if (opts.fsync) await fh.sync();
  } catch (e) {
    throw naming(e, tmp);
  } finally {
    await fh?.close();
  }
}

/**
 * A write through a descriptor fails without a path (`ENOSPC: no space left on device, write`): the error names the
 * file it was for, as Node's own path calls do (`…, write '/ws/.pipe/lock'`), so a full disk says where.
 */
function naming(e: unknown, tmp: string): unknown {
  const err = e as NodeJS.ErrnoException;
  if (err instanceof Error && typeof err.code === 'string' && err.path === undefined) {
    const path = tempOf(tmp)?.of ?? tmp; // the file the temp was for
    err.path = path;
    err.message = `${err.message} '${path}'`;
  }
  return e;
}

function chunksOf(data: FileData): Iterable<string | Uint8Array> {
  return typeof data === 'string' || data instanceof Uint8Array ? [data] : data;
}

/**
 * unlink, where a file that is not there is no error: one call where rm's `force` costs two stats first (a temp
 * file per record of every stage).
 */
export function unlinkIfPresentSync(file: string): void {
  try {
    unlinkSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}
async function unlinkIfPresent(file: string): Promise<void> {
  try {
    await unlink(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}
