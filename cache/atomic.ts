/**
 * Atomic file replacement: write a uniquely named temporary file in the same directory, then rename it over the
 * target. rename(2) is atomic on one filesystem (NFS included), so a reader sees the old or the new file, never a
 * torn one, and two processes writing at once each produce a whole file (the last rename wins).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

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
