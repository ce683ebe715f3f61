/**
 * Partial downloads and when they may be resumed.
 *
 * A part file lives in the workspace's `.pipe/tmp/download/`, keyed by the file's workspace-relative destination —
 * not in the stage's out directory, which the engine deletes when a stage fails or is cancelled — so that Ctrl-C
 * keeps it for the next run. Beside it, `<key>.json` holds what the first response said about the file: its strong
 * ETag and/or Last-Modified and its total length (and a hash of the URL without its query, never the URL itself:
 * signed URLs keep their tokens in the query).
 *
 * A resume is valid only when the server proves it is the same entity: the request carries `If-Range` with a
 * strong validator, and the 206 answer continues at our byte, with the first response's total length and the same
 * validators. Anything less restarts from byte 0, and the caller says why.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, realpath, rm } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import { basename, join, relative, sep } from 'node:path';
import { readBounded } from '../../engine/stage-api.js';
import { writeFileAtomic } from '../lib/atomic-write.js';

export interface PartMeta {
  /** sha256 of the URL's origin and path (the query of a signed URL may change between runs; the file may not). */
  source: string;
  etag?: string;
  lastModified?: string;
  /** Total length of the file as the first (200) response gave it; null when it did not say. */
  total: number | null;
}

export interface PartFile {
  part: string;
  meta: string;
}

/** Where the part of `final` lives: `<workspace>/.pipe/tmp/download/<sha256 of its workspace-relative path>.part`. */
export async function partFileFor(workspace: string, final: string): Promise<PartFile> {
  return partIn((await partDir(workspace, true))!, workspace, final);
}

/**
 * The bytes a part holds (0: none). A part that is not a regular file — a link someone put at its name, to a file
 * outside the workspace perhaps, or a FIFO — is removed (the link, never what it points to), part and record, and
 * counts as none: nothing is read, written, truncated or placed through it.
 */
export async function partSize(p: PartFile): Promise<number> {
  let st;
  try {
    st = await lstat(p.part);
  } catch {
    return 0;
  }
  if (st.isFile()) return st.size;
  await removePart(p);
  return 0;
}

/**
 * Remove the parts (and their records) of these destinations once their files are in place: one listing of the
 * folder, not a call per file. A part an earlier run finished may be left by a file this run took from the mirror.
 */
export async function removeParts(workspace: string, finals: readonly string[]): Promise<void> {
  const dir = await partDir(workspace, false);
  if (dir === undefined) return;
  const names = new Set(await readdir(dir));
  for (const final of finals) {
    const p = partIn(dir, workspace, final);
    for (const f of [p.part, p.meta]) if (names.has(basename(f))) await rm(f, { force: true });
  }
}

/**
 * The parts' folder, made when `make` (else undefined when missing). The parts live with the workspace's own state,
 * wherever `.pipe` really is; a link planted inside it that leads elsewhere is refused rather than written or
 * deleted through.
 */
async function partDir(workspace: string, make: boolean): Promise<string | undefined> {
  const pipeDir = join(workspace, '.pipe');
  const dir = join(pipeDir, 'tmp', 'download');
  if (make) await mkdir(dir, { recursive: true });
  else if (!existsSync(dir)) return undefined;
  const [realDir, realPipe] = await Promise.all([realpath(dir), realpath(pipeDir)]);
  if (!realDir.startsWith(realPipe + sep))
    throw new Error(`${dir} resolves to ${realDir}, outside the workspace's .pipe folder; remove that link`);
  return dir;
}

function partIn(dir: string, workspace: string, final: string): PartFile {
  const key = createHash('sha256').update(relative(workspace, final)).digest('hex').slice(0, 32);
  return { part: join(dir, `${key}.part`), meta: join(dir, `${key}.json`) };
}

export const sourceId = (url: URL): string => createHash('sha256').update(`${url.origin}${url.pathname}`).digest('hex');

/** Bytes a part's record may have: a few validators and numbers. */
const MAX_META_BYTES = 64 * 1024;

export async function readPartMeta(file: string): Promise<PartMeta | null> {
  try {
    // Bounded and non-blocking: a FIFO or a huge file planted at the record's name is no record.
    const r = await readBounded(file, MAX_META_BYTES);
    if (!r.ok) return null;
    const m = JSON.parse(r.bytes.toString('utf8')) as Partial<PartMeta>;
    if (typeof m.source !== 'string') return null;
    return {
      source: m.source,
      ...(typeof m.etag === 'string' ? { etag: m.etag } : {}),
      ...(typeof m.lastModified === 'string' ? { lastModified: m.lastModified } : {}),
      total: typeof m.total === 'number' && Number.isSafeInteger(m.total) && m.total >= 0 ? m.total : null,
    };
  } catch {
    return null;
  }
}

export const writePartMeta = (file: string, meta: PartMeta): Promise<void> => writeFileAtomic(file, JSON.stringify(meta));

export async function removePart(p: PartFile): Promise<void> {
  await Promise.all([rm(p.part, { force: true }), rm(p.meta, { force: true })]);
}

/**
 * The validators a 200 response gives for a later `If-Range`: a strong ETag, and Last-Modified only when it is a
 * strong validator (RFC 9110 §8.8.2.2: at least one second before the response's Date).
 */
export function validatorsOf(headers: IncomingHttpHeaders): { etag?: string; lastModified?: string } {
  const out: { etag?: string; lastModified?: string } = {};
  const etag = headers.etag;
  if (etag && /^"[^"]*"$/.test(etag)) out.etag = etag;
  const lm = headers['last-modified'];
  const lmT = lm ? Date.parse(lm) : NaN;
  const dateT = headers.date ? Date.parse(headers.date) : NaN;
  if (lm && Number.isFinite(lmT) && Number.isFinite(dateT) && dateT - lmT >= 1000) out.lastModified = lm;
  return out;
}

export type ResumePlan = { resume: true; ifRange: string } | { resume: false; why: string };

/** Before a request: may `have` bytes of a part file be continued, given what its first response said? */
export function planResume(meta: PartMeta | null, have: number, source: string): ResumePlan {
  if (!meta) return { resume: false, why: 'nothing records which server response the partial file came from' };
  if (meta.source !== source) return { resume: false, why: 'the partial file came from another URL' };
  const ifRange = meta.etag ?? meta.lastModified;
  if (!ifRange) return { resume: false, why: 'the server gave no strong ETag or Last-Modified that could prove the file is unchanged' };
  if (meta.total === null) return { resume: false, why: "the first response did not give the file's total length" };
  if (have > meta.total) return { resume: false, why: `the partial file has ${have} bytes, more than the file's ${meta.total}` };
  return { resume: true, ifRange };
}

/**
 * After a 416 to a request for the bytes past a part's end: why it does not prove the part is the whole current
 * file, or null when it does (the validator the part came with, sent back unchanged).
 */
export function sameValidator(meta: PartMeta, headers: IncomingHttpHeaders): string | null {
  const [name, was, now] = meta.etag ? ['ETag', meta.etag, headers.etag] : ['Last-Modified', meta.lastModified, headers['last-modified']];
  if (was === undefined) return 'nothing records which version of the file the part holds';
  if (now === was) return null;
  return now === undefined ? `its 416 gives no ${name} to prove the file is still ${was}` : `its 416 gives ${name} ${now}, not ${was}`;
}

/** Parse `Content-Range: bytes START-END/TOTAL` (TOTAL may be `*`). */
export function parseContentRange(v: string | undefined): { start: number; end: number; total: number | null } | null {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec((v ?? '').trim());
  if (!m) return null;
  return { start: Number(m[1]), end: Number(m[2]), total: m[3] === '*' ? null : Number(m[3]) };
}

/** After a 206 to a resume at `have`: why it does not continue the same file, or null when it does. */
export function partialMismatch(meta: PartMeta, have: number, headers: IncomingHttpHeaders): string | null {
  const cr = parseContentRange(headers['content-range']);
  if (!cr) return `its Content-Range ${JSON.stringify(headers['content-range'] ?? '')} is not "bytes START-END/TOTAL"`;
  if (cr.start !== have) return `it starts at byte ${cr.start}, not at ${have}`;
  if (cr.total === null) return 'it does not give the total length';
  if (cr.total !== meta.total) return `the total length changed from ${meta.total} to ${cr.total} bytes`;
  const etag = headers.etag;
  if (meta.etag && etag && etag !== meta.etag) return `its ETag changed from ${meta.etag} to ${etag}`;
  const lm = headers['last-modified'];
  if (meta.lastModified && lm && lm !== meta.lastModified) return `its Last-Modified changed from ${meta.lastModified} to ${lm}`;
  return null;
}
