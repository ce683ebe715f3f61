/**
 * Atomic file replacement: write a uniquely named temporary file in the same directory, then rename it over the
 * target. rename(2) is atomic on one filesystem (NFS included), so a reader sees the old or the new file, never a
 * torn one, and two processes writing at once each produce a whole file (the last rename wins).
 */
import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { link, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';

/**
 * A name beside `path` that no other process or call will pick: the pid, and 48 bits that start random in each
 * process and count up (a random draw per call cost more than the rest of writing a small record).
 */
export function tempName(path: string, tag = 'tmp'): string {
  tempCount = (tempCount + 1) % 2 ** 48;
  return `${path}.${tag}-${process.pid}-${tempCount.toString(16).padStart(12, '0')}`;
}
let tempCount = randomBytes(6).readUIntBE(0, 6);

export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempName(path);
  try {
    await writeFile(tmp, data, { mode });
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/**
 * Create `path` with `data` only if it does not exist yet: false when it does (someone was first). Done as link(2)
 * of a fully written temp file, so readers never see it half written; on a filesystem without hard links, an
 * O_EXCL create (a reader may then briefly see a short file, which pipe's readers treat as absent).
 */
export async function createExclusive(path: string, data: string | Uint8Array, mode = 0o644): Promise<boolean> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempName(path);
  try {
    await writeFile(tmp, data, { mode });
    await link(tmp, path);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EMLINK') throw e;
  } finally {
    await rm(tmp, { force: true });
  }
  try {
    await writeFile(path, data, { mode, flag: 'wx' });
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}

/**
 * writeFileAtomic for small files (run records, history markers), with synchronous calls: a promise round trip per
 * call cost ~5x the CPU of the calls themselves on a run of 1,000 trivial stages. The folder is created only when
 * the first write finds it missing.
 */
export function writeFileAtomicSync(path: string, data: string | Uint8Array, mode = 0o644): void {
  const tmp = tempName(path);
  try {
    inFolder(path, () => writeFileSync(tmp, data, { mode }));
    renameSync(tmp, path);
  } catch (e) {
    unlinkIfThere(tmp);
    throw e;
  }
}

/** createExclusive for small files, with synchronous calls (see writeFileAtomicSync). */
export function createExclusiveSync(path: string, data: string | Uint8Array, mode = 0o644): boolean {
  const tmp = tempName(path);
  try {
    inFolder(path, () => writeFileSync(tmp, data, { mode }));
    linkSync(tmp, path);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EMLINK') throw e;
  } finally {
    unlinkIfThere(tmp);
  }
  try {
    writeFileSync(path, data, { mode, flag: 'wx' });
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}

/** unlink(2), quiet when nothing is there (rmSync costs an lstat more). */
function unlinkIfThere(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
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

/** True when a process with this pid exists on this host (EPERM: it exists but belongs to someone else). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Remove temp siblings of `path` (from tempName) left by processes that died mid-write, e.g. a restore interrupted
 * by a crash: `<path>.<tag>-<pid>-<hex>` whose pid no longer exists. Live processes' temps are left alone.
 */
export async function removeDeadTemps(path: string, tags: readonly string[]): Promise<void> {
  const base = basename(path);
  let names: string[];
  try {
    names = await readdir(dirname(path));
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(`${base}.`)) continue;
    const m = /^\.([\w-]+?)-(\d+)-[0-9a-f]{12}$/.exec(name.slice(base.length));
    if (!m || !tags.includes(m[1]!) || pidAlive(Number(m[2]))) continue;
    await rm(`${dirname(path)}/${name}`, { recursive: true, force: true });
  }
}
