/**
 * Reading what others may have written: a store shared by several workspaces (run records, disagreements, the
 * registry) and the files its registry names (another workspace's `workspace.json` and lock files). Anyone who can
 * write the store can plant a FIFO or a device there, which a plain read would block on (or read) forever.
 *
 * This file imports nothing but Node.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';

/**
 * The text of `path` when it is a regular file of at most `maxBytes`, else undefined (missing, a directory, a FIFO or
 * device, larger). The file is opened non-blocking and checked before reading; a file that grows while it is read
 * stops at the bound.
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

/** readRegularFile with synchronous calls (run records are small, and read by the thousand on a no-op run). */
export function readRegularFileSync(path: string, maxBytes: number): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ENXIO' || code === 'EACCES') return undefined;
    throw e;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > maxBytes) return undefined;
    const buf = Buffer.alloc(st.size + 1);
    let n = 0;
    for (;;) {
      const bytesRead = readSync(fd, buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n === buf.length) return undefined; // grew past what stat said while being read
    }
    return buf.toString('utf8', 0, n);
  } finally {
    closeSync(fd);
  }
}
