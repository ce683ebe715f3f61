/**
 * RunCache: every completed stage run, kept by its StageKey so that ANY earlier run with the same key can be
 * restored (switch a param back and forth: no re-run), as DVC's run-cache does.
 *
 * Layout under `dir` (the workspace's `.pipe/runs`):
 *  - `<key[0:2]>/<key>.json`  the RunRecord, written atomically (temp + rename): never torn;
 *  - `by-stage/<stage>/<endedAt ms, 15 digits>-<key>`  one empty marker file per run, the per-stage history index.
 *    A file per entry (rather than appending to one .jsonl) because creating a file is atomic on every filesystem,
 *    while O_APPEND is not on NFS: two processes (or hosts) recording runs at once can never lose or tear an entry.
 *    The directory listing sorted by name is the history, newest last;
 *  - `nondeterministic/<key>/<ms>-<pid>-<rand>.json`  one file per disagreement found (see below).
 *
 * With a Store, the same records are also kept in it, `<store>/runs/<key[0:2]>/<key>.json` (without the key fields,
 * which may hold env values): every workspace sharing the store can restore through them, a fresh clone included.
 * This, not a lock file, is what vouches that a key produced given outputs: the lock file in git is a record anyone
 * can edit, so it is never a source of content (docs/cache.md).
 *
 * Same key, different bytes is news, not an overwrite: the first result under a key stays the result (as long as
 * its objects can still be served), and each differing output is recorded as a Disagreement that `pipe status`,
 * `pipe why` and `pipe verify` report. Stages that always run (`always_run`) replace their record instead.
 */
import { closeSync, existsSync, openSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { basename, dirname } from 'node:path';
import { createExclusiveSync, writeFileAtomic, writeFileAtomicSync } from './atomic.js';
import { readRegularFile, readRegularFileSync } from './read.js';
import { listDir, ownFolderSync, ownFoldersIntact } from './dir.js';
import { asStageKey, isHashHex } from './brand.js';
import { wellFormedExec } from './exec.js';
import { outPathKey } from './paths.js';
import type { LocalStore } from './store.js';
import type { Disagreement, RunCache, RunPut, RunRecord, StageKey, StoredOutput } from './types.js';

/** A run record or disagreement larger than this is not one pipe wrote (its outputs list paths and hashes only). */
const MAX_RECORD_BYTES = 64 * 1024 * 1024;

export interface RunCacheOptions {
  /** Keep records in the store too (shared by the workspaces using it) and check old results against it. */
  store?: LocalStore;
}

export interface LocalRunCache extends RunCache {
  readonly dir: string;
  recordPath(key: StageKey): string;
  /** Every file a record of `key` may be in: this workspace's, then the store's shared one. */
  recordPaths(key: StageKey): string[];
  historyDir(stage: string): string;
}

export function openRunCache(dir: string, opts: RunCacheOptions = {}): LocalRunCache {
  return new FileRunCache(dir, opts.store);
}

/** Where the store keeps run records shared by the workspaces using it. */
export function sharedRunsDir(storeRoot: string): string {
  return `${storeRoot}/runs`;
}

class FileRunCache implements LocalRunCache {
  private readonly shared: string | undefined;
  private ndKeys: Promise<Set<string>> | undefined;

  constructor(
    readonly dir: string,
    private readonly store: LocalStore | undefined,
  ) {
    this.shared = store ? sharedRunsDir(store.root) : undefined;
  }

  recordPath(key: StageKey): string {
    return keyPath(this.dir, key);
  }

  recordPaths(key: StageKey): string[] {
    return this.shared ? [keyPath(this.dir, key), keyPath(this.shared, key)] : [keyPath(this.dir, key)];
  }

  historyDir(stage: string): string {
    return `${this.dir}/by-stage/${safeStageName(stage)}`;
  }

  async get(key: StageKey): Promise<RunRecord | undefined> {
    return recordIn(this.dir, key) ?? (this.shared ? recordIn(this.shared, key) : undefined);
  }

  async put(record: RunRecord, opts: { replace?: boolean } = {}): Promise<RunPut> {
    const key = record.key;
    let kept = record;
    let disagreements: Disagreement[] = [];
    // Real folders, never a link a stage put at one of their names (cache/dir.ts): the records land where they belong.
    if (this.shared) runsFolder(this.shared, key.slice(0, 2));
    runsFolder(this.dir, key.slice(0, 2));
    for (let attempt = 0; ; attempt++) {
      const shared = this.shared ? readRecordSync(keyPath(this.shared, key), key) : undefined;
      const prior = opts.replace ? undefined : (shared ?? readRecordSync(this.recordPath(key), key));
      disagreements = prior ? differences(prior, record) : [];
      kept = record;
      if (prior && disagreements.length > 0 && (await this.servable(prior, record))) kept = { ...prior, fields: record.fields };
      for (const d of disagreements) d.kept = kept === record ? 'second' : 'first';
      if (!this.shared) break;
      if (shared && !opts.replace && (kept !== record || disagreements.length === 0)) break; // the store has the first
      const text = `${JSON.stringify(sharedRecord(kept), null, 1)}\n`;
      if (shared || opts.replace) {
        writeFileAtomicSync(keyPath(this.shared, key), text); // replacing an unservable first result, or always_run
        break;
      }
      if (createExclusiveSync(keyPath(this.shared, key), text)) break;
      if (attempt > 0) break; // another process keeps writing first results: ours stands locally
      // Another workspace recorded this key a moment ago: compare with that one instead.
    }
    // Small files, written with synchronous calls (cache/atomic.ts writeFileAtomicSync).
    writeFileAtomicSync(this.recordPath(key), `${JSON.stringify(kept, null, 1)}\n`);
    const ms = Date.parse(record.endedAt);
    const stamp = String(Number.isFinite(ms) ? ms : Date.now()).padStart(15, '0');
    // An empty marker, made new ('wx'): one already there is the same key recorded at the same instant, or a link a
    // stage put at the name, which 'w' would open (and create a file) wherever it points.
    const marker = `${runsFolder(this.dir, 'by-stage', safeStageName(record.stage))}/${stamp}-${key}`;
    try {
      closeSync(openSync(marker, 'wx'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    for (const d of disagreements) await this.recordDisagreement(d);
    return { record: kept, disagreements };
  }

  /**
   * Whether an earlier result can still be put in a workspace in place of `later`: it holds every output `later` does
   * (the same key declares the same outs; a record that lacks one, say `outputs: []` in a shared store, was kept in
   * force and failed the stage on every run: "did not store"), and all of its objects are present and sound.
   */
  private async servable(rec: RunRecord, later: RunRecord): Promise<boolean> {
    const held = new Set(rec.outputs.map((o) => outPathKey(o.path)));
    if (!later.outputs.every((o) => held.has(outPathKey(o.path)))) return false;
    if (!this.store) return true;
    for (const o of rec.outputs) if (!(await this.store.verify(o))) return false;
    return true;
  }

  async recordDisagreement(d: Disagreement): Promise<void> {
    const name = `${String(Date.now()).padStart(15, '0')}-${process.pid}-${randomBytes(4).toString('hex')}.json`;
    for (const root of [this.dir, this.shared]) {
      if (root === undefined) continue;
      const dir = runsFolder(root, 'nondeterministic', d.key);
      await writeFileAtomic(`${dir}/${name}`, `${JSON.stringify(d)}\n`);
    }
    (await this.ndKeys)?.add(d.key);
  }

  async disagreements(key: string): Promise<Disagreement[]> {
    if (!isHashHex(key)) return [];
    const out: Disagreement[] = [];
    const seen = new Set<string>();
    for (const root of [this.dir, this.shared]) {
      if (root === undefined) continue;
      const dir = `${root}/nondeterministic/${key}`;
      for (const name of (await listDir(dir)).sort()) {
        const d = await readDisagreement(`${dir}/${name}`, key);
        if (!d) continue;
        const id = `${outPathKey(d.path)}\0${d.first}\0${d.second}`;
        if (seen.has(id)) continue;
        seen.add(id);
        out.push(d);
      }
    }
    return out;
  }

  nondeterministicKeys(): Promise<ReadonlySet<string>> {
    // The promise is what is memoised: every stage of a run asks at once, and one listing answers them all.
    return (this.ndKeys ??= (async () => {
      const keys = new Set<string>();
      for (const root of [this.dir, this.shared]) {
        if (root === undefined) continue;
        for (const k of await listDir(`${root}/nondeterministic`)) if (isHashHex(k)) keys.add(k);
      }
      return keys;
    })());
  }

  async history(stage: string, limit = Infinity): Promise<RunRecord[]> {
    // Listed only through pipe's own folders: a file a stage put at one of their names is no history (the listing
    // failed with ENOTDIR: `pipe why` and `status` exited on it), and a link is not followed (cache/dir.ts).
    if (!ownFoldersIntact(dirname(this.dir), basename(this.dir), 'by-stage')) return [];
    const names = await listDir(this.historyDir(stage));
    const markers = names.filter((n) => /^\d{15}-[0-9a-f]{64}$/.test(n)).sort().reverse();
    const out: RunRecord[] = [];
    const seen = new Set<string>();
    for (const m of markers) {
      if (out.length >= limit) break;
      const key = m.slice(16);
      if (seen.has(key)) continue; // the same key re-run later: listed once, at its newest run
      seen.add(key);
      const rec = recordIn(this.dir, key);
      // A record gc'd or overwritten by another stage with the same key is not part of this stage's history.
      if (rec && rec.stage === stage) out.push(rec);
    }
    return out;
  }
}

/** A folder of a runs folder (`.pipe/runs`, or the store's `runs`), the runs folder included: real folders, made. */
function runsFolder(runs: string, ...parts: string[]): string {
  return ownFolderSync(dirname(runs), basename(runs), ...parts);
}

/**
 * The record of `key` in the runs folder `runs`, read only through pipe's own folders: a link a stage put at `runs`
 * or at its fan-out folder is not followed (cache/dir.ts), its records are not this workspace's.
 */
function recordIn(runs: string, key: string): RunRecord | undefined {
  return ownFoldersIntact(dirname(runs), basename(runs), key.slice(0, 2)) ? readRecordSync(keyPath(runs, key), key) : undefined;
}

function keyPath(dir: string, key: string): string {
  if (!isHashHex(key)) throw new TypeError(`not a stage key: ${JSON.stringify(key)}`);
  return `${dir}/${key.slice(0, 2)}/${key}.json`;
}

/** What the store keeps of a record: everything but the key fields (which may hold env values). */
function sharedRecord(r: RunRecord): RunRecord {
  return { ...r, fields: {} };
}

/** Outputs whose hashes differ between the first result and a later run of the same key (paths compared by key). */
function differences(first: RunRecord, later: RunRecord): Disagreement[] {
  const a = new Map(first.outputs.map((o) => [outPathKey(o.path), o]));
  const b = new Map(later.outputs.map((o) => [outPathKey(o.path), o]));
  const out: Disagreement[] = [];
  for (const k of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = a.get(k);
    const y = b.get(k);
    if (x?.hash === y?.hash) continue;
    out.push({
      key: later.key,
      stage: later.stage,
      path: (y ?? x)!.path,
      first: x?.hash ?? null,
      second: y?.hash ?? null,
      at: later.endedAt,
      host: later.host || hostname(),
      kept: 'first',
    });
  }
  return out;
}

/**
 * A record that is missing, unreadable, not a regular file (a FIFO in a shared store), over MAX_RECORD_BYTES, not for `key`, or whose outputs are not well-formed (a relative path that
 * stays inside the workspace, `file`/`dir`, a sha256 hash, sizes, exec fields as cache/exec.ts writes them) is treated as absent:
 * the stage simply runs again.
 */
export async function readRecord(path: string, key?: string): Promise<RunRecord | undefined> {
  return readRecordSync(path, key);
}

/**
 * readRecord with synchronous calls (records are small), and no exception for the usual absent record: most keys
 * of a first run have none, and a thrown ENOENT (an Error with a stack) cost more than the read. Read non-blocking,
 * regular files only, bounded: a FIFO planted in a shared store reads as absent instead of hanging the run.
 */
export function readRecordSync(path: string, key?: string): RunRecord | undefined {
  if (!existsSync(path)) return undefined;
  const text = readRegularFileSync(path, MAX_RECORD_BYTES);
  if (text === undefined) return undefined;
  try {
    const rec = JSON.parse(text) as RunRecord;
    if (typeof rec !== 'object' || rec === null || !Array.isArray(rec.outputs) || !rec.outputs.every(wellFormed)) return undefined;
    if (typeof rec.key !== 'string' || typeof rec.stage !== 'string') return undefined;
    if (key !== undefined && rec.key !== key) return undefined;
    return wellFormedProvenance(rec) ? rec : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The rest of a record, as far as readers rely on its types: `pipe why` compares `fields` (a mapping; the engine
 * checks what is inside), `pipe metrics --all` and the history show the times and where the run was. A record
 * whose `fields` was null or whose `endedAt` was a number crashed them with a stack trace.
 */
function wellFormedProvenance(rec: RunRecord): boolean {
  const map = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
  const optional = (v: unknown, ok: (v: unknown) => boolean) => v === undefined || ok(v);
  return (
    map(rec.fields) &&
    typeof rec.startedAt === 'string' &&
    typeof rec.endedAt === 'string' &&
    Number.isFinite(rec.durationMs) &&
    typeof rec.host === 'string' &&
    typeof rec.executor === 'string' &&
    optional(rec.jobId, (v) => typeof v === 'string') &&
    optional(rec.pipeVersion, (v) => typeof v === 'string') &&
    optional(rec.extra, map) &&
    optional(rec.execution, map)
  );
}

function wellFormed(o: unknown): o is StoredOutput {
  const x = o as StoredOutput;
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof x.path === 'string' &&
    workspaceRelative(x.path) &&
    (x.kind === 'file' || x.kind === 'dir') &&
    typeof x.hash === 'string' &&
    isHashHex(x.hash) &&
    Number.isSafeInteger(x.size) &&
    Number.isSafeInteger(x.files) &&
    wellFormedExec(x)
  );
}

/** An output path as pipe records them: relative, and not leaving the folder it is relative to. */
function workspaceRelative(path: string): boolean {
  const k = outPathKey(path);
  return k !== '' && k !== '.' && k !== '..' && !k.startsWith('/') && !k.startsWith('../') && !path.includes('\0');
}

async function readDisagreement(path: string, key: string): Promise<Disagreement | undefined> {
  try {
    const d = JSON.parse((await readRegularFile(path, MAX_RECORD_BYTES)) ?? 'null') as Disagreement;
    const hashOrNull = (h: unknown): boolean => h === null || (typeof h === 'string' && isHashHex(h));
    if (d.key !== key || typeof d.path !== 'string' || typeof d.stage !== 'string' || !hashOrNull(d.first) || !hashOrNull(d.second)) return undefined;
    return { ...d, kept: d.kept === 'second' ? 'second' : 'first' };
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

