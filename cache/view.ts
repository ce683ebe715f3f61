/**
 * A directory manifest kept in memory and edited in place: what lets cache/state.ts answer "the hash of this
 * 100,000-file directory after these 3 files changed" without re-statting the other 99,997 (watch mode names the
 * changed files). Pure data: no disk.
 *
 * The entries are held sorted, in chunks of a few hundred, each with its JSON text cached as bytes: an edit
 * re-renders one chunk, and the directory hash (sha256 of the whole manifest, the same bytes manifestJson writes)
 * is recombined by feeding the cached chunks to one sha256. Rendering 100,000 entries and hashing the string costs
 * ~100-300 ms on a loaded 2-core machine, hashing cached bytes ~15 ms.
 */
import { createHash } from 'node:crypto';
import { asHash } from './brand.js';
import { entryJson, isLinkEntry, type ManifestEntry } from './manifest.js';
import type { Hash } from './types.js';

const CHUNK = 512;

interface Chunk {
  entries: ManifestEntry[];
  /** This chunk's entries as manifest JSON (comma-separated), rendered on demand. */
  bytes: Buffer | undefined;
}

export class ManifestView {
  private chunks: Chunk[] = [];
  private totalSize = 0;
  private fileCount = 0;
  private count = 0;

  /** `entries` must be sorted by path (manifest order). */
  constructor(entries: readonly ManifestEntry[]) {
    for (let i = 0; i < entries.length; i += CHUNK) this.chunks.push({ entries: entries.slice(i, i + CHUNK), bytes: undefined });
    for (const e of entries) this.account(e, 1);
  }

  get size(): number {
    return this.totalSize;
  }

  /** Regular files (links are not counted, as in PathHash.files). */
  get files(): number {
    return this.fileCount;
  }

  get length(): number {
    return this.count;
  }

  /** Insert or replace the entry for its path. */
  upsert(e: ManifestEntry): void {
    const [ci, i, found] = this.find(e[0]);
    if (ci < 0) {
      this.chunks.push({ entries: [e], bytes: undefined });
      this.account(e, 1);
      return;
    }
    const c = this.chunks[ci]!;
    if (found) {
      this.account(c.entries[i]!, -1);
      c.entries[i] = e;
    } else {
      c.entries.splice(i, 0, e);
      if (c.entries.length > 2 * CHUNK) this.chunks.splice(ci + 1, 0, { entries: c.entries.splice(CHUNK), bytes: undefined });
    }
    this.account(e, 1);
    c.bytes = undefined;
  }

  /** Remove the entry for `rel` and every entry below it (`rel/...`): a file or a whole subdirectory. */
  removeTree(rel: string): number {
    let removed = 0;
    const [ci, i, found] = this.find(rel);
    if (found) {
      const c = this.chunks[ci]!;
      this.account(c.entries.splice(i, 1)[0]!, -1);
      c.bytes = undefined;
      removed++;
      if (c.entries.length === 0) this.chunks.splice(ci, 1); // chunks are never empty (find relies on it)
    }
    // Paths starting with `rel/` are contiguous in sorted order (not necessarily right after `rel`: `rel!x` sorts
    // between them), from where `rel/` itself would be.
    const below = `${rel}/`;
    let [cj, j] = this.find(below);
    while (cj >= 0 && cj < this.chunks.length) {
      const c = this.chunks[cj]!;
      let k = j;
      while (k < c.entries.length && c.entries[k]![0].startsWith(below)) k++;
      if (k > j) {
        for (const e of c.entries.splice(j, k - j)) this.account(e, -1);
        removed += k - j;
        c.bytes = undefined;
      }
      if (j < c.entries.length) break; // stopped inside this chunk: nothing further can match
      cj++;
      j = 0;
    }
    if (removed > 0) this.chunks = this.chunks.filter((c) => c.entries.length > 0);
    return removed;
  }

  /** sha256 of the manifest JSON: equal to hashBytes(manifestJson(this.entries())). */
  hash(): Hash {
    const h = createHash('sha256');
    h.update('[');
    let first = true;
    for (const c of this.chunks) {
      if (c.entries.length === 0) continue;
      if (!first) h.update(',');
      first = false;
      h.update((c.bytes ??= Buffer.from(c.entries.map(entryJson).join(','))));
    }
    h.update(']');
    return asHash(h.digest('hex'));
  }

  entries(): ManifestEntry[] {
    return this.chunks.flatMap((c) => c.entries);
  }

  private account(e: ManifestEntry, sign: 1 | -1): void {
    this.count += sign;
    if (isLinkEntry(e)) return;
    this.totalSize += sign * e[2];
    this.fileCount += sign;
  }

  /**
   * Where `rel` is or would be inserted: [chunk index, index in it, found]. The chunk is the last one whose first
   * path is ≤ rel (or the first chunk); [-1, 0, false] when there are no chunks.
   */
  private find(rel: string): [number, number, boolean] {
    if (this.chunks.length === 0) return [-1, 0, false];
    let lo = 0;
    let hi = this.chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      const first = this.chunks[mid]!.entries[0];
      if (first !== undefined && first[0] <= rel) lo = mid;
      else hi = mid - 1;
    }
    const es = this.chunks[lo]!.entries;
    let a = 0;
    let b = es.length;
    while (a < b) {
      const m = (a + b) >> 1;
      if (es[m]![0] < rel) a = m + 1;
      else b = m;
    }
    return [lo, a, a < es.length && es[a]![0] === rel];
  }
}
