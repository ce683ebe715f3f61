/**
 * RunCache: every completed stage run, kept by its StageKey so that ANY earlier run with the same key can be
 * restored (switch a param back and forth: no re-run), as DVC's run-cache does.
 *
 * Layout under `dir`:
 *  - `<key[0:2]>/<key>.json`  the RunRecord, written atomically (temp + rename): never torn, and two processes
 *    finishing the same key each write a whole record (the last wins; both describe equal outputs);
 *  - `by-stage/<stage>/<endedAt ms, 15 digits>-<key>`  one empty marker file per run, the per-stage history index.
 *    A file per entry (rather than appending to one .jsonl) because creating a file is atomic on every filesystem,
 *    while O_APPEND is not on NFS: two processes (or hosts) recording runs at once can never lose or tear an entry.
 *    The directory listing sorted by name is the history, newest last.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { writeFileAtomic } from './atomic.js';
import { asStageKey, isHashHex } from './brand.js';
import type { RunCache, RunRecord, StageKey } from './types.js';

export interface LocalRunCache extends RunCache {
  readonly dir: string;
  recordPath(key: StageKey): string;
  historyDir(stage: string): string;
}

export function openRunCache(dir: string): LocalRunCache {
  return new FileRunCache(dir);
}

class FileRunCache implements LocalRunCache {
  constructor(readonly dir: string) {}

  recordPath(key: StageKey): string {
    if (!isHashHex(key)) throw new TypeError(`not a stage key: ${JSON.stringify(key)}`);
    return `${this.dir}/${key.slice(0, 2)}/${key}.json`;
  }

  historyDir(stage: string): string {
    return `${this.dir}/by-stage/${safeStageName(stage)}`;
  }

  async get(key: StageKey): Promise<RunRecord | undefined> {
    return readRecord(this.recordPath(key), key);
  }

  async put(record: RunRecord): Promise<void> {
    await writeFileAtomic(this.recordPath(record.key), `${JSON.stringify(record, null, 1)}\n`);
    const hist = this.historyDir(record.stage);
    await mkdir(hist, { recursive: true });
    const ms = Date.parse(record.endedAt);
    const stamp = String(Number.isFinite(ms) ? ms : Date.now()).padStart(15, '0');
    // An empty marker; 'w' so re-recording the same key at the same instant is harmless.
    await writeFile(`${hist}/${stamp}-${record.key}`, '', { flag: 'w' });
  }

  async history(stage: string, limit = Infinity): Promise<RunRecord[]> {
    let names: string[];
    try {
      names = await readdir(this.historyDir(stage));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const markers = names.filter((n) => /^\d{15}-[0-9a-f]{64}$/.test(n)).sort().reverse();
    const out: RunRecord[] = [];
    const seen = new Set<string>();
    for (const m of markers) {
      if (out.length >= limit) break;
      const key = m.slice(16);
      if (seen.has(key)) continue; // the same key re-run later: listed once, at its newest run
      seen.add(key);
      const rec = await this.get(asStageKey(key));
      // A record gc'd or overwritten by another stage with the same key is not part of this stage's history.
      if (rec && rec.stage === stage) out.push(rec);
    }
    return out;
  }
}

/** A record that is missing, unreadable, or not for `key` is treated as absent: the stage simply runs again. */
export async function readRecord(path: string, key?: string): Promise<RunRecord | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const rec = JSON.parse(text) as RunRecord;
    if (typeof rec !== 'object' || rec === null || !Array.isArray(rec.outputs)) return undefined;
    if (key !== undefined && rec.key !== key) return undefined;
    return rec;
  } catch {
    return undefined;
  }
}

/**
 * Stage names (`fpr@model=padchest,eval=vindr_pcxr`) as one directory name: URI-encoded (reversible, no `/`), and
 * when too long for a file name, cut and suffixed with a hash of the full name so two names never share a folder.
 */
export function safeStageName(stage: string): string {
  const enc = encodeURIComponent(stage).replace(/\*/g, '%2A').replace(/^\./, '%2E');
  if (enc.length <= 180) return enc;
  return `${enc.slice(0, 150)}~${createHash('sha256').update(stage).digest('hex').slice(0, 16)}`;
}
