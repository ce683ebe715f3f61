/**
 * Archive extraction with maintained libraries (node-tar for .tar/.tar.gz/.tgz, yauzl for .zip), refusing any
 * archive with an entry that would land outside the target directory (absolute paths, "..", escaping links) —
 * checked for every entry before anything is written.
 */
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join, normalize } from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar';
import yauzl from 'yauzl';
import { unsafeRelativePath } from './checksums.js';

export class ArchiveError extends Error {}

export type ArchiveKind = 'tar' | 'tgz' | 'zip';

export function archiveKind(file: string): ArchiveKind | null {
  if (/\.(tar\.gz|tgz)$/i.test(file)) return 'tgz';
  if (/\.tar$/i.test(file)) return 'tar';
  if (/\.zip$/i.test(file)) return 'zip';
  return null;
}

function checkEntry(archive: string, name: string, link?: string): void {
  const why = unsafeRelativePath(name);
  if (why) throw new ArchiveError(`${archive}: entry ${JSON.stringify(name)} would be written outside the target directory (${why}); refusing to extract`);
  if (link !== undefined) {
    const target = link.startsWith('/') ? link : normalize(join(dirname(name), link));
    const lwhy = link.startsWith('/') ? 'absolute link target' : unsafeRelativePath(target);
    if (lwhy) throw new ArchiveError(`${archive}: link ${JSON.stringify(name)} → ${JSON.stringify(link)} points outside the target directory (${lwhy}); refusing to extract`);
  }
}

async function extractTar(file: string, dest: string, label: string): Promise<string[]> {
  const names: string[] = [];
  let problem: Error | null = null;
  let entries = 0;
  await tar.t({
    file,
    onReadEntry: (e) => {
      entries++;
      try {
        const isLink = e.type === 'SymbolicLink' || e.type === 'Link';
        checkEntry(label, e.path, isLink ? e.linkpath ?? '' : undefined);
        if (e.type === 'File' || e.type === 'OldFile' || e.type === 'ContiguousFile') names.push(e.path);
      } catch (err) {
        problem ??= err as Error;
      }
    },
  }).catch((e: Error) => {
    throw new ArchiveError(`${label}: not a readable tar archive (${e.message})`);
  });
  if (problem) throw problem;
  if (entries === 0) return names; // node-tar rejects extracting an archive without entries
  await tar.x({ file, cwd: dest, strict: true, preservePaths: false }).catch((e: Error) => {
    throw new ArchiveError(`${label}: extraction failed (${e.message})`);
  });
  return names;
}

function openZip(file: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) =>
    // decodeStrings: false so that *we* validate names and report them (yauzl's own check throws a bare error).
    yauzl.open(file, { lazyEntries: true, decodeStrings: false }, (e, z) => (e || !z ? reject(e ?? new Error('no zip')) : resolve(z))),
  );
}

async function zipEntries(file: string): Promise<yauzl.Entry[]> {
  const z = await openZip(file);
  return new Promise((resolve, reject) => {
    const out: yauzl.Entry[] = [];
    z.on('entry', (e: yauzl.Entry) => {
      out.push(e);
      z.readEntry();
    });
    z.on('end', () => resolve(out));
    z.on('error', reject);
    z.readEntry();
  });
}

const zipName = (e: yauzl.Entry): string => Buffer.from(e.fileName as unknown as Buffer).toString('utf8');

async function extractZip(file: string, dest: string, label: string): Promise<string[]> {
  let entries: yauzl.Entry[];
  try {
    entries = await zipEntries(file);
  } catch (e) {
    throw new ArchiveError(`${label}: not a readable zip archive (${(e as Error).message})`);
  }
  for (const e of entries) checkEntry(label, zipName(e).replace(/\\/g, '/'));
  const z = await openZip(file);
  const names: string[] = [];
  try {
    for (const e of entries) {
      const name = zipName(e).replace(/\\/g, '/');
      const target = join(dest, name);
      if (name.endsWith('/')) {
        await mkdir(target, { recursive: true });
        continue;
      }
      await mkdir(dirname(target), { recursive: true });
      const stream = await new Promise<NodeJS.ReadableStream>((resolve, reject) =>
        z.openReadStream(e, (err, s) => (err || !s ? reject(err ?? new Error('no stream')) : resolve(s))),
      );
      await pipeline(stream, createWriteStream(target));
      names.push(name);
    }
  } finally {
    z.close();
  }
  return names;
}

/** Extract `file` into `dest`; returns the relative paths of the files written. */
export async function extractArchive(file: string, dest: string, label: string): Promise<string[]> {
  const kind = archiveKind(file);
  if (!kind) throw new ArchiveError(`${label}: not an archive this stage can extract (.tar, .tar.gz, .tgz, .zip)`);
  await mkdir(dest, { recursive: true });
  return kind === 'zip' ? extractZip(file, dest, label) : extractTar(file, dest, label);
}
