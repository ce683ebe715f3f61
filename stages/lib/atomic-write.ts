import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';

/** Write a file so that readers see either the old content or the complete new one, never half a file. */
export async function writeFileAtomic(absPath: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(absPath), { recursive: true });
  const tmp = `${absPath}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, absPath);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
