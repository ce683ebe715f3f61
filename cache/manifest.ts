/**
 * The directory manifest (docs/cache.md "Hashes"): canonical JSON of the directory's entries sorted by relPath,
 *  - a regular file: `[relPath, sha256, size]`;
 *  - a symbolic link kept as a link (only in a directory OUTPUT, see walk.ts `keep`): `[relPath, target]`.
 * Its sha256 is the directory's hash, and it is stored in the Store under that hash, so a directory can be restored
 * from its hash alone. A manifest without links is byte-for-byte what pipe wrote before links were kept, so every
 * earlier directory hash and stored manifest stays valid (no version bump); an older pipe reading a manifest with a
 * link rejects it as malformed, and the stage simply runs again.
 *
 * Written by hand rather than via canonicalJson because it is built for 100,000-file trees on every no-op run;
 * test/cache/hash.test.ts checks both agree.
 */
import { asHash, isHashHex } from './brand.js';
import { CacheError } from './errors.js';
import type { Hash } from './types.js';

export type FileEntry = [relPath: string, hash: Hash, size: number];
export type LinkEntry = [relPath: string, target: string];
export type ManifestEntry = FileEntry | LinkEntry;

export function isLinkEntry(e: ManifestEntry): e is LinkEntry {
  return e.length === 2;
}

/** One entry's JSON text (what the manifest joins with commas). */
export function entryJson(e: ManifestEntry): string {
  return e.length === 2 ? `[${JSON.stringify(e[0])},${JSON.stringify(e[1])}]` : `[${JSON.stringify(e[0])},"${e[1]}",${e[2]}]`;
}

/** Entries must already be sorted by relPath (see walk.ts `byRel`). */
export function manifestJson(entries: readonly ManifestEntry[]): string {
  const parts = new Array<string>(entries.length);
  for (let i = 0; i < entries.length; i++) parts[i] = entryJson(entries[i]!);
  return `[${parts.join(',')}]`;
}

/** Parse and validate a stored manifest; `where` names the object for the error message. */
export function parseManifest(text: string, where: string): ManifestEntry[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CacheError(`${where} is not a valid directory manifest (not JSON).`, 'bad-manifest', where);
  }
  if (!Array.isArray(value)) throw new CacheError(`${where} is not a directory manifest (not a list).`, 'bad-manifest', where);
  let prev: string | undefined;
  return value.map((e, i) => {
    const bad = (why: string): CacheError =>
      new CacheError(`${where}: manifest entry ${i} is malformed (${why}): ${JSON.stringify(e)}.`, 'bad-manifest', where);
    if (!Array.isArray(e) || typeof e[0] !== 'string' || !safeRel(e[0])) throw bad('not [path, ...] with a relative path inside the directory');
    // Sorted and unique: two entries for one path could not both be restored.
    if (prev !== undefined && !(prev < e[0])) throw bad('paths not sorted or repeated');
    prev = e[0];
    if (e.length === 2) {
      if (typeof e[1] !== 'string' || e[1] === '' || e[1].includes('\0')) throw bad('a link target must be a non-empty string');
      return [e[0], e[1]] as LinkEntry;
    }
    if (e.length !== 3 || typeof e[1] !== 'string' || !isHashHex(e[1]) || !Number.isSafeInteger(e[2]) || e[2] < 0) {
      throw bad('expected [path, sha256, size]');
    }
    return [e[0], asHash(e[1]), e[2]] as FileEntry;
  });
}

/** A manifest path must stay inside the directory it is restored into. */
function safeRel(rel: string): boolean {
  if (rel === '' || rel.startsWith('/') || rel.includes('\0')) return false;
  return rel.split('/').every((p) => p !== '' && p !== '.' && p !== '..');
}
