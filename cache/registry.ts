/**
 * The workspaces that use a store, so that `pipe gc` in one of them keeps what the others still reference
 * (docs/cache.md "A store shared by several workspaces").
 *
 * Each workspace has an identity: `<ws>/.pipe/workspace.json` = `{id, created}`, a random id made on first use.
 * The store keeps one small file per (workspace, pipeline lock file) it has been used with:
 * `<store>/workspaces/<id>/<sha256(lock file)[0:16]>.json` = `{version, id, host, root, pipeDir, lock}`. One file per
 * pair, created once (a `stat` on later runs), so two pipelines registering at once cannot lose each other.
 *
 * When gc reads the registry, a workspace is
 *  - `visible` when its `.pipe/workspace.json` carries the same id: its lock files and run records are read;
 *  - `gone` when it is on this host and its `.pipe` is gone or belongs to another workspace now (deleted, or
 *    re-created from scratch): its entries are dropped;
 *  - `unknown` when it is on another host and not visible from here (not on a shared filesystem): nothing tells what
 *    it references, so gc deletes no object at all and says so.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname } from 'node:path';
import { createExclusive, writeFileAtomicSync } from './atomic.js';
import { readRegularFile, readRegularFileSync } from './read.js';
import { listDir, ownFolderSync, ownFoldersIntact } from './dir.js';

/** A registry entry or workspace.json larger than this is not one pipe wrote. */
const MAX_ENTRY_BYTES = 1024 * 1024;

export interface RegistryEntry {
  version: 1;
  id: string;
  host: string;
  /** The workspace root (the pipelines' workdir). */
  root: string;
  /** Its `.pipe` folder: `runs/` and `workspace.json` live there. */
  pipeDir: string;
  /** A pipeline file used in it and that pipeline's lock file (absolute). */
  pipeline: string;
  lock: string;
}

export interface RegisteredWorkspace {
  id: string;
  host: string;
  root: string;
  pipeDir: string;
  /** Its pipelines, each with its lock file. */
  pipelines: Array<{ pipeline: string; lock: string }>;
  state: 'visible' | 'gone' | 'unknown';
  /** The registry folder of this workspace (`<store>/workspaces/<id>`). */
  dir: string;
}

export function registryDir(storeRoot: string): string {
  return `${storeRoot}/workspaces`;
}

/** This workspace's id, made on first use. */
export async function workspaceId(pipeDir: string): Promise<string> {
  const file = `${pipeDir}/workspace.json`;
  const have = readId(file);
  if (have) return have;
  const id = randomBytes(12).toString('hex');
  // Created once, never rewritten: flushed before it appears, or a power loss could leave it empty for good.
  if (await createExclusive(file, `${JSON.stringify({ id, created: new Date().toISOString() })}\n`, { fsync: true })) return id;
  return readId(file) ?? id; // another process made it first
}

function readId(file: string): string | undefined {
  try {
    const v = JSON.parse(readRegularFileSync(file, MAX_ENTRY_BYTES) ?? '') as { id?: unknown };
    return typeof v.id === 'string' && /^[0-9a-f]{24}$/.test(v.id) ? v.id : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Record that the workspace at `root` uses the store, with the lock file of the pipeline it runs. Best effort: a
 * read-only store (nobody can collect it anyway) is not an error. Cheap when already registered (one stat).
 */
export async function registerWorkspace(storeRoot: string, ws: { root: string; pipeDir: string; pipeline: string; lock: string }): Promise<void> {
  try {
    const id = await workspaceId(ws.pipeDir);
    // Real folders, never a link a stage put at their names (the store may lie inside a workspace): cache/dir.ts.
    const dir = ownFolderSync(storeRoot, basename(registryDir(storeRoot)), id);
    const file = `${dir}/${createHash('sha256').update(ws.lock).digest('hex').slice(0, 16)}.json`;
    if (existsSync(file)) return;
    const entry: RegistryEntry = { version: 1, id, host: hostname(), root: ws.root, pipeDir: ws.pipeDir, pipeline: ws.pipeline, lock: ws.lock };
    // Written once and only stat-ed later: flushed, so a power loss cannot leave an empty entry that stays.
    writeFileAtomicSync(file, `${JSON.stringify(entry)}\n`, { fsync: true });
  } catch {
    // Read-only or unreachable store: restores still work; there is nothing to collect from here.
  }
}

/** Every workspace registered in the store, with what can be known of it from this host. */
export async function listWorkspaces(storeRoot: string): Promise<RegisteredWorkspace[]> {
  const root = registryDir(storeRoot);
  const out: RegisteredWorkspace[] = [];
  for (const id of await listDir(root)) {
    if (!/^[0-9a-f]{24}$/.test(id)) continue;
    const dir = `${root}/${id}`;
    const entries: RegistryEntry[] = [];
    for (const name of await listDir(dir)) {
      if (!name.endsWith('.json')) continue;
      const e = await readEntry(`${dir}/${name}`, id);
      if (e) entries.push(e);
    }
    const first = entries[0];
    if (!first) continue;
    const state = await stateOf(first);
    const pipelines = new Map(entries.map((e) => [e.lock, { pipeline: e.pipeline, lock: e.lock }]));
    out.push({ id, host: first.host, root: first.root, pipeDir: first.pipeDir, pipelines: [...pipelines.values()], state, dir });
  }
  return out;
}

async function stateOf(e: RegistryEntry): Promise<RegisteredWorkspace['state']> {
  // The path comes from a store other workspaces can write: read non-blocking and bounded (a FIFO there would hang gc).
  const file = `${e.pipeDir}/workspace.json`;
  let text: string | undefined;
  try {
    text = await readRegularFile(file, MAX_ENTRY_BYTES);
  } catch {
    text = undefined;
  }
  if (text === undefined) {
    let code: string | undefined;
    try {
      lstatSync(file);
    } catch (err) {
      code = (err as NodeJS.ErrnoException).code;
    }
    // Missing here: gone if this is its host; elsewhere it may simply not be mounted. Unreadable: someone else's.
    return (code === 'ENOENT' || code === 'ENOTDIR') && e.host === hostname() ? 'gone' : 'unknown';
  }
  try {
    if ((JSON.parse(text) as { id?: unknown }).id === e.id) return 'visible';
  } catch {
    return 'unknown'; // being written
  }
  // Another workspace lives there now: this one was deleted and the folder re-made (or, on another host, a
  // different folder of the same name: nothing to tell).
  return e.host === hostname() ? 'gone' : 'unknown';
}

/** Forget a workspace (gone): its registry folder is removed. */
export async function dropWorkspace(w: RegisteredWorkspace): Promise<void> {
  await rm(w.dir, { recursive: true, force: true });
}

/**
 * Forget the workspace whose `.pipe` folder is `pipeDir` (about to be deleted on purpose: `pipe exp remove`), so gc
 * stops keeping what only it referenced. Nothing to do when it never registered.
 */
export async function unregisterWorkspace(storeRoot: string, pipeDir: string): Promise<void> {
  const id = readId(`${pipeDir}/workspace.json`);
  // Never through a link a stage put at the registry folder's name: the folder of that id would be deleted wherever
  // the link points. The registry is best effort, as when registering: the entry then stays.
  if (id && ownFoldersIntact(storeRoot, basename(registryDir(storeRoot)))) await rm(`${registryDir(storeRoot)}/${id}`, { recursive: true, force: true });
}

/** Forget one pipeline of a workspace (its file was deleted or renamed, and its lock file with it). */
export function dropLock(w: RegisteredWorkspace, lock: string): void {
  // Never through a link at the workspace's registry folder: the file it names would be outside the store.
  if (!ownFoldersIntact(dirname(w.dir), basename(w.dir))) return;
  rmSync(`${w.dir}/${createHash('sha256').update(lock).digest('hex').slice(0, 16)}.json`, { force: true });
}

async function readEntry(file: string, id: string): Promise<RegistryEntry | undefined> {
  try {
    const e = JSON.parse((await readRegularFile(file, MAX_ENTRY_BYTES)) ?? 'null') as RegistryEntry;
    const ok = e.version === 1 && e.id === id && [e.host, e.root, e.pipeDir, e.pipeline, e.lock].every((x) => typeof x === 'string' && x !== '');
    return ok ? e : undefined;
  } catch {
    return undefined;
  }
}

