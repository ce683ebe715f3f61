/**
 * How kinds write outputs so that a reader sees the old output or the whole new one, never half of one (and a
 * crash or a cancellation leaves nothing half-written behind): whole files through pipe's one atomic write
 * (cache/atomic.ts, which kinds reach through the stage API), whole folders staged beside the target and renamed
 * into place.
 */
import { mkdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { tempName } from '../../engine/stage-api.js';

export { tempName, writeFileAtomic, writeFileAtomicSync } from '../../engine/stage-api.js';

/** A new, empty staging folder beside `dir` (same filesystem, so moving it into place is a rename); hidden. */
export async function stagingDirBeside(dir: string): Promise<string> {
  const staging = tempName(join(dirname(dir), `.${basename(dir)}`));
  await mkdir(staging, { recursive: true });
  return staging;
}

/** Put a fully written staging folder at `dir`, replacing whatever was there. */
export async function replaceDir(staging: string, dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dirname(dir), { recursive: true });
  await rename(staging, dir);
}

/**
 * A folder written all or nothing: `fill` writes into a staging folder beside `dir`, which then replaces `dir`. On
 * any error (or a cancellation that throws) the staging folder goes and `dir` is left as it was.
 */
export async function writeDirAtomic<T>(dir: string, fill: (staging: string) => Promise<T>): Promise<T> {
  const staging = await stagingDirBeside(dir);
  try {
    const result = await fill(staging);
    await replaceDir(staging, dir);
    return result;
  } catch (e) {
    await rm(staging, { recursive: true, force: true });
    throw e;
  }
}
