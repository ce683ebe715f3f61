/**
 * The directory manifest (cache/types.ts): canonical JSON of `[[relPath, fileHash, size], ...]` sorted by relPath.
 * Its sha256 is the directory's hash, and it is stored in the Store under that hash, so a directory can be restored
 * from its hash alone. Written by hand rather than via canonicalJson because it is built for 100,000-file trees on
 * every no-op run; test/cache/hash.test.ts checks both agree.
 */
import { asHash, isHashHex } from './brand.js';
import { CacheError } from './errors.js';
import type { Hash } from './types.js';

export type ManifestEntry = [relPath: string, hash: Hash, size: number];

/** Entries must already be sorted by relPath (see walk.ts `byRel`). */
export function manifestJson(entries: readonly ManifestEntry[]): string {
  const parts = new Array<string>(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const [rel, hash, size] = entries[i]!;
    parts[i] = `[${JSON.stringify(rel)},"${hash}",${size}]`;
  }
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
  return value.map((e, i) => {
    if (
      !Array.isArray(e) ||
      e.length !== 3 ||
      typeof e[0] !== 'string' ||
      !safeRel(e[0]) ||
      typeof e[1] !== 'string' ||
      !isHashHex(e[1]) ||
      typeof e[2] !== 'number'
    ) {
      throw new CacheError(`${where}: manifest entry ${i} is malformed: ${JSON.stringify(e)}.`, 'bad-manifest', where);
    }
    return [e[0], asHash(e[1]), e[2]] as ManifestEntry;
  });
}

/** A manifest path must stay inside the directory it is restored into. */
function safeRel(rel: string): boolean {
  if (rel === '' || rel.startsWith('/') || rel.includes('\0')) return false;
  return rel.split('/').every((p) => p !== '' && p !== '.' && p !== '..');
}
