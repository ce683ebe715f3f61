/**
 * Atomic file replacement: write a uniquely named temporary file in the same directory, then rename it over the
 * target. rename(2) is atomic on one filesystem (NFS included), so a reader sees the old or the new file, never a
 * torn one, and two processes writing at once each produce a whole file (the last rename wins).
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, mkdir, open, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';

/**
 * The text of `path` when it is a regular file of at most `maxBytes`, else undefined (missing, a directory, a FIFO or
 * device, larger). For what pipe reads from a store that other workspaces can write (run records, the registry): a
 * FIFO planted there would block a plain read forever, so the file is opened non-blocking and checked before reading;
 * a file that grows while it is read stops at the bound.
 */
export async function readRegularFile(path: string, maxBytes: number): Promise<string | undefined> {
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ENXIO' || code === 'EACCES') return undefined;
    throw e;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.size > maxBytes) return undefined;
    const buf = Buffer.alloc(st.size + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n === buf.length) return undefined; // grew past what stat said while being read
    }
    return buf.toString('utf8', 0, n);
  } finally {
    await fh.close();
  }
}

/** A name beside `path` that no other process or call will pick. */
export function tempName(path: string, tag = 'tmp'): string {
  return `${path}.${tag}-${process.pid}-${randomBytes(6).toString('hex')}`;
}

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
