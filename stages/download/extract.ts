/**
 * Archive extraction with maintained libraries (node-tar for .tar/.tar.gz/.tgz, yauzl for .zip), all or nothing:
 *  1. the file must be what its name says (content sniffing: an HTML login page saved as `.tar.gz` is refused);
 *  2. every entry is checked before anything is written: no absolute paths, `..` or links pointing outside, and the
 *     declared sizes stay within the bounds (total expanded size, and ratio to the archive's size — a zip bomb is
 *     refused without writing a byte; yauzl checks each zip entry's real size against its declaration, and a tar
 *     header's size is what the entry holds);
 *  3. entries are written into a staging folder beside the target and moved into place only when all succeeded,
 *     so a failure leaves nothing half-extracted.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, open, readdir, readlink, realpath, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, normalize, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import zlib, { createGunzip } from 'node:zlib';
import { Transform } from 'node:stream';
import * as tar from 'tar';
import yauzl from 'yauzl';
import { unsafeRelativePath } from './checksums.js';

export class ArchiveError extends Error {}

export type ArchiveKind = 'tar' | 'tgz' | 'zip';

export interface ExtractLimits {
  /** Largest total of the entries' sizes (with.max_extract_bytes). */
  maxBytes: number;
  /** Largest ratio of that total to the archive's own size (with.max_extract_ratio). */
  maxRatio: number;
  /** Most entries (files, folders, links) one archive may hold (with.max_extract_entries): inodes and time are finite too. */
  maxEntries: number;
}

export function archiveKind(file: string): ArchiveKind | null {
  if (/\.(tar\.gz|tgz)$/i.test(file)) return 'tgz';
  if (/\.tar$/i.test(file)) return 'tar';
  if (/\.zip$/i.test(file)) return 'zip';
  return null;
}

/** What a name promises about the content, for every name this kind can check (archives and `.gz`). */
type Promised = ArchiveKind | 'gzip';
const promisedBy = (name: string): Promised | null => archiveKind(name) ?? (/\.gz$/i.test(name) ? 'gzip' : null);
const PROMISE_WORDS: Record<Promised, string> = { tar: 'a tar archive', tgz: 'a gzip-compressed tar archive', zip: 'a zip archive', gzip: 'gzip-compressed' };

async function readHead(file: string, bytes: number, position = 0): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    const { bytesRead } = await fh.read(buf, 0, bytes, position);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** The first `bytes` of a gzip file's decompressed content (or fewer, if it is shorter or corrupt). */
async function gunzipHead(file: string, bytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  const src = createReadStream(file);
  const gunzip = createGunzip();
  try {
    for await (const chunk of src.pipe(gunzip)) {
      chunks.push(chunk as Buffer);
      got += (chunk as Buffer).length;
      if (got >= bytes) break;
    }
  } catch {
    /* a truncated or corrupt stream: judge what came out */
  } finally {
    src.destroy();
    gunzip.destroy();
  }
  return Buffer.concat(chunks).subarray(0, bytes);
}

/** A ustar/gnu/v7 tar header block: "ustar" magic, or a checksum that adds up; an all-zero block is an empty tar. */
function isTarHeader(block: Buffer): boolean {
  if (block.length < 512) return false;
  if (block.every((b) => b === 0)) return true;
  if (block.subarray(257, 262).toString('latin1') === 'ustar') return true;
  const stored = parseInt(block.subarray(148, 156).toString('latin1').replace(/\0.*$/s, '').trim(), 8);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : block[i]!;
  return Number.isFinite(stored) && stored === sum;
}

/** How to name what the file is instead, from its first bytes (HTML error/login pages above all). */
function describeContent(head: Buffer): string {
  if (head.length === 0) return 'it is empty';
  const text = head.subarray(0, 512).toString('utf8').replace(/^\uFEFF/, '');
  const start = text.trimStart().slice(0, 60).replace(/\s+/g, ' ').trimEnd();
  const printable = /^[\x09\x0a\x0d\x20-\x7e\u00a0-\uffff]*$/.test(text.slice(0, 200));
  const quote = printable ? ` (it starts with ${JSON.stringify(start + (text.trimStart().length > 60 ? '…' : ''))})` : '';
  if (/^\s*(<!doctype html|<html|<head|<body|<!--)/i.test(text)) return `it is an HTML page${quote} — often a login, consent or error page served instead of the file`;
  if (/^\s*[{[]/.test(text) && printable) return `it is JSON or text${quote} — often an error message from the server`;
  if (/^\s*<\?xml/i.test(text)) return `it is XML${quote} — often an error message from the server (e.g. an expired signed URL)`;
  if (head[0] === 0x1f && head[1] === 0x8b) return 'it is gzip-compressed data';
  if (head.subarray(0, 2).toString('latin1') === 'PK') return 'it is a zip archive';
  return printable ? `it is text${quote}` : 'its content is not recognised';
}

/**
 * Null when the file is what its name promises (for names this kind knows: .tar, .tar.gz/.tgz, .zip, .gz), else
 * why not, in words. Cheap: the first 512 bytes (decompressed, for .tar.gz) and, for zip, the end record.
 */
export async function contentMismatch(file: string, name: string): Promise<string | null> {
  const promised = promisedBy(name);
  if (!promised) return null;
  const head = await readHead(file, 512);
  const isGzip = head[0] === 0x1f && head[1] === 0x8b;
  let ok: boolean;
  if (promised === 'zip') {
    // The end-of-central-directory record sits in the last 22 bytes + up to 64 KiB of comment (a zip may carry a
    // self-extractor stub in front, so the first bytes prove nothing).
    const size = (await stat(file)).size;
    const tailLen = Math.min(size, 22 + 0xffff);
    const tail = await readHead(file, tailLen, size - tailLen);
    ok = tail.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06])) >= 0;
  } else if (promised === 'gzip') ok = isGzip;
  else if (promised === 'tgz') ok = isGzip && isTarHeader(await gunzipHead(file, 512));
  else ok = isTarHeader(head);
  if (ok) return null;
  const what = promised === 'tgz' && isGzip ? 'it is gzip-compressed, but what it holds is not a tar archive' : describeContent(head);
  return `${name} is not ${PROMISE_WORDS[promised]}: ${what}`;
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

const fmtBytes = (b: number): string =>
  b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(1)} GiB` : b >= 2 ** 20 ? `${(b / 2 ** 20).toFixed(1)} MiB` : b >= 1024 ? `${(b / 1024).toFixed(1)} KiB` : `${b} bytes`;

/** Keeps the running total of declared entry sizes against the limits; says why once one is passed. */
class ExpansionBudget {
  total = 0;
  entries = 0;
  constructor(
    private readonly label: string,
    private readonly archiveSize: number,
    private readonly limits: ExtractLimits,
  ) {}
  add(size: number): string | null {
    this.total += size;
    this.entries++;
    const { maxBytes, maxRatio, maxEntries } = this.limits;
    if (this.entries > maxEntries)
      return (
        `${this.label} holds more than ${maxEntries} entries (with.max_extract_entries = ${maxEntries}); nothing was extracted. ` +
        `If the archive is trusted and meant to hold this many files, raise with.max_extract_entries`
      );
    const ratio = this.total / Math.max(1, this.archiveSize);
    if (ratio > maxRatio)
      return (
        `${this.label} expands to ${Math.floor(ratio)}× its own size of ${fmtBytes(this.archiveSize)} (${this.total} bytes declared by ` +
        `${this.entries} entr${this.entries === 1 ? 'y' : 'ies'} so far), more than with.max_extract_ratio = ${maxRatio} — a decompression bomb? ` +
        `Nothing was extracted. If the archive is trusted, raise with.max_extract_ratio`
      );
    if (this.total > maxBytes)
      return (
        `${this.label} expands to more than ${fmtBytes(maxBytes)} (with.max_extract_bytes = ${maxBytes}; ${this.entries} entr${this.entries === 1 ? 'y' : 'ies'} ` +
        `declare ${this.total} bytes so far); nothing was extracted. If the archive is trusted and meant to be this large, raise with.max_extract_bytes`
      );
    return null;
  }
}

/**
 * List a tar archive's entries through `onEntry`, stopping at the first problem it reports. Rejects on a damaged
 * archive (bad header checksum, truncated input); an archive of nothing but its end blocks lists no entries.
 */
function listTar(file: string, maxRatio: number, onEntry: (e: tar.ReadEntry) => string | null): Promise<string | null> {
  return new Promise((resolve, reject) => {
    let problem: string | null = null;
    let entries = 0;
    const src = createReadStream(file);
    const stop = (): void => {
      src.unpipe();
      src.destroy();
    };
    const parser = new tar.Parser({
      maxDecompressionRatio: Math.max(1000, maxRatio),
      onwarn: (_code: string, message: string | Error) => {
        const text = typeof message === 'string' ? message : message.message;
        if (problem !== null || (entries === 0 && text === 'Unrecognized archive format')) return;
        problem = '';
        stop();
        reject(new Error(text));
      },
      onReadEntry: (e) => {
        entries++;
        if (problem === null) {
          const why = onEntry(e);
          if (why !== null) {
            problem = why;
            stop();
            resolve(why);
          }
        }
        e.resume();
      },
    });
    parser.on('error', (e: Error) => {
      if (problem === null) reject(e);
    });
    parser.on('end', () => resolve(problem));
    src.on('error', reject);
    src.pipe(parser);
  });
}

async function extractTar(file: string, staging: string, label: string, limits: ExtractLimits): Promise<string[]> {
  const names: string[] = [];
  const budget = new ExpansionBudget(label, (await stat(file)).size, limits);
  const problem = await listTar(file, limits.maxRatio, (e) => {
    const isLink = e.type === 'SymbolicLink' || e.type === 'Link';
    try {
      checkEntry(label, e.path, isLink ? (e.linkpath ?? '') : undefined);
    } catch (err) {
      return (err as Error).message;
    }
    if (e.type === 'File' || e.type === 'OldFile' || e.type === 'ContiguousFile') names.push(e.path);
    return budget.add(e.size ?? 0);
  }).catch((e: Error) => {
    throw new ArchiveError(`${label}: not a readable tar archive (${e.message})`);
  });
  if (problem) throw new ArchiveError(problem);
  if (budget.entries === 0) return names; // node-tar refuses to extract an archive without entries
  await tar.x({ file, cwd: staging, strict: true, preservePaths: false, maxDecompressionRatio: Math.max(1000, limits.maxRatio) }).catch((e: Error) => {
    throw new ArchiveError(`${label}: extraction failed (${e.message})`);
  });
  return names;
}

function openZip(file: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) =>
    // decodeStrings: false so that *we* validate names and report them (yauzl's own check throws a bare error).
    yauzl.open(file, { lazyEntries: true, decodeStrings: false, validateEntrySizes: true }, (e, z) => (e || !z ? reject(e ?? new Error('no zip')) : resolve(z))),
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

const hex = (n: number): string => n.toString(16).padStart(8, '0');

/** CRC-32 (zlib's polynomial) over a stream, with zlib.crc32 where Node has it (20.15+), else a table. */
class Crc32 {
  private static table: Uint32Array | null = null;
  private crc = 0;
  get value(): number {
    return this.crc >>> 0;
  }
  update(b: Buffer): void {
    const native = (zlib as unknown as { crc32?: (d: Buffer, v: number) => number }).crc32;
    if (native) {
      this.crc = native(b, this.crc);
      return;
    }
    const t = (Crc32.table ??= Uint32Array.from({ length: 256 }, (_, n) => {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      return c >>> 0;
    }));
    let c = ~this.crc >>> 0;
    for (let i = 0; i < b.length; i++) c = t[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
    this.crc = ~c >>> 0;
  }
  pass(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _enc, cb) => {
        this.update(chunk);
        cb(null, chunk);
      },
    });
  }
}

const zipName = (e: yauzl.Entry): string => Buffer.from(e.fileName as unknown as Buffer).toString('utf8');

async function extractZip(file: string, staging: string, label: string, limits: ExtractLimits): Promise<string[]> {
  let entries: yauzl.Entry[];
  try {
    entries = await zipEntries(file);
  } catch (e) {
    throw new ArchiveError(`${label}: not a readable zip archive (${(e as Error).message})`);
  }
  const budget = new ExpansionBudget(label, (await stat(file)).size, limits);
  for (const e of entries) {
    checkEntry(label, zipName(e).replace(/\\/g, '/'));
    const why = budget.add(e.uncompressedSize);
    if (why) throw new ArchiveError(why);
  }
  const z = await openZip(file);
  const names: string[] = [];
  try {
    for (const e of entries) {
      const name = zipName(e).replace(/\\/g, '/');
      const target = join(staging, name);
      if (name.endsWith('/')) {
        await mkdir(target, { recursive: true });
        continue;
      }
      await mkdir(dirname(target), { recursive: true });
      const stream = await new Promise<NodeJS.ReadableStream>((resolve, reject) =>
        z.openReadStream(e, (err, s) => (err || !s ? reject(err ?? new Error('no stream')) : resolve(s))),
      );
      const crc = new Crc32();
      await pipeline(stream, crc.pass(), createWriteStream(target)).catch((err: Error) => {
        throw new ArchiveError(`${label}: entry ${JSON.stringify(name)} could not be extracted (${err.message})`);
      });
      // yauzl checks sizes but leaves the CRC to its caller: a corrupt entry must not pass as data.
      if (crc.value !== e.crc32 >>> 0)
        throw new ArchiveError(`${label}: entry ${JSON.stringify(name)} is corrupt (CRC-32 ${hex(crc.value)}, the archive says ${hex(e.crc32 >>> 0)})`);
      names.push(name);
    }
  } finally {
    z.close();
  }
  return names;
}

/**
 * Move everything under `from` into `to` (same file system: renames). A directory that does not exist yet moves
 * whole; one that does is merged into. Never writes through a link already in `to`.
 */
async function moveInto(from: string, to: string, label: string, rel = ''): Promise<void> {
  for (const e of await readdir(from, { withFileTypes: true })) {
    const src = join(from, e.name);
    const dst = join(to, e.name);
    const relName = rel ? `${rel}/${e.name}` : e.name;
    const existing = await lstat(dst).catch(() => null);
    if (e.isDirectory() && existing?.isDirectory()) await moveInto(src, dst, label, relName);
    else if (existing?.isSymbolicLink() && e.isDirectory())
      throw new ArchiveError(`${label}: ${relName} is a link in the target directory; refusing to extract through it`);
    else if (existing?.isDirectory()) throw new ArchiveError(`${label}: ${relName} is a directory in the target directory, but a file in the archive`);
    else await rename(src, dst);
  }
}

/**
 * Every link the archive made resolves inside the staging folder, through the archive's other links too. Each link
 * target was checked on its own (checkEntry), but that check is lexical: with `s/up → ..` (inside: the top) and
 * `s/esc → up/..` (lexically `s`), `esc` really names the folder above the target. Resolved on disk, in the staging
 * folder, before anything is moved into place (node-tar itself never writes a file through a link).
 */
async function linksStayInside(staging: string, label: string, rel = ''): Promise<void> {
  const root = await realpath(staging);
  const dir = rel ? join(staging, rel) : staging;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const relName = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) await linksStayInside(staging, label, relName);
    if (!e.isSymbolicLink()) continue;
    const target = await readlink(join(dir, e.name));
    // Not path.resolve: it would fold `up/..` lexically, which is exactly what the kernel does not do.
    const real = await realOfExisting(target.startsWith('/') ? target : `${dir}/${target}`);
    if (real !== root && !real.startsWith(root + sep))
      throw new ArchiveError(`${label}: link ${JSON.stringify(relName)} → ${JSON.stringify(target)} points outside the target directory (through the archive's other links); refusing to extract`);
  }
}

/** The real path of `p` as far as it exists (a dangling or looping link: its folder's real path plus the rest). */
async function realOfExisting(p: string): Promise<string> {
  const rest: string[] = [];
  for (let cur = p; ; ) {
    try {
      return join(await realpath(cur), ...rest);
    } catch {
      const up = dirname(cur);
      if (up === cur) return p;
      rest.unshift(basename(cur));
      cur = up;
    }
  }
}

/** Extract `file` into `dest`, all or nothing; returns the relative paths of the files written. */
export async function extractArchive(file: string, dest: string, label: string, limits: ExtractLimits): Promise<string[]> {
  const kind = archiveKind(file);
  if (!kind) throw new ArchiveError(`${label}: not an archive this stage can extract (.tar, .tar.gz, .tgz, .zip)`);
  const wrong = await contentMismatch(file, basename(file));
  if (wrong) throw new ArchiveError(`${label}: ${wrong}; nothing was extracted`);
  await mkdir(dest, { recursive: true });
  // Staging beside the target (same file system, so moving into place is a rename), removed on every path.
  const staging = join(dest, `.extracting-${basename(file)}-${process.pid}`);
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging);
  try {
    const names = kind === 'zip' ? await extractZip(file, staging, label, limits) : await extractTar(file, staging, label, limits);
    await linksStayInside(staging, label);
    await moveInto(staging, dest, label);
    return names;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
