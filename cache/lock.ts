/**
 * WorkspaceLock: one `pipe` writer per workspace. A second one is told who holds the lock, or waits for it.
 *
 * Taking the lock is an exclusive create of `<pipeDir>/lock`, done as link(2) of a fully written temp file: like
 * O_EXCL it fails if the lock exists (also on NFS, where link is the classic atomic primitive), and unlike
 * open-then-write no one can ever read a half-written holder.
 *
 * A holder on this host whose pid is gone is stale and is taken over. Removing a stale lock must not remove a
 * live lock that replaced it in between, so it is done under a short-lived second lock (`lock.break`, same
 * link(2) create): inside it, the lock file is re-checked to be the very inode found stale before it is unlinked.
 * A holder on another host is never judged stale (its pid means nothing here): remove the file by hand.
 * On Linux the lock also records the boot id and the holder's start time, so a pid reused after a crash or a reboot
 * does not keep a dead run's lock alive.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { readFileSync } from 'node:fs';
import { link, lstat, mkdir, stat, unlink } from 'node:fs/promises';
import { createExclusive } from './atomic.js';
import { ownFolderSync } from './dir.js';
import { readBounded, unreadText } from './read.js';
import type { LockHolder, WorkspaceLock } from './types.js';

/**
 * True when a process with this pid exists on this host (EPERM: it exists but belongs to someone else) and has not
 * exited. A zombie (Linux: exited, not yet reaped by its parent) answers `kill(pid, 0)` but will never run again: a
 * `pipe` SIGKILLed under a parent that does not reap it held its lock until that parent ended.
 */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return !zombie(pid);
}

/** Linux: the process's state in /proc is Z. Elsewhere (or unreadable) false, leaving the kill(0) answer alone. */
function zombie(pid: number): boolean {
  return procStat(pid)?.[0] === 'Z';
}

/** The fields of `/proc/<pid>/stat` after the command name (state first), or undefined where there is none. */
function procStat(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

interface LockFile extends LockHolder {
  /** Distinguishes our lock from a later one by the same pid (pid reuse, or a second lock in one process). */
  nonce: string;
  /** Linux boot id: a lock from before a reboot is stale whatever process now has its pid. */
  bootId?: string;
  /** The holder's start time (clock ticks since boot, /proc/<pid>/stat): a reused pid is a different process. */
  start?: string;
}

export interface WorkspaceLockOptions {
  /** Poll interval while waiting. Default 150 ms. */
  pollMs?: number;
}

export function workspaceLock(pipeDir: string, command: string, opts: WorkspaceLockOptions = {}): WorkspaceLock {
  const lockPath = `${pipeDir}/lock`;
  const pollMs = opts.pollMs ?? 150;
  return {
    async acquire({ wait, onWait, signal }) {
      // `.pipe` as this process opened it (pipe watch takes the lock again each cycle): one a stage moved away and
      // linked elsewhere since is refused, naming it (cache/dir.ts), never locked through.
      ownFolderSync(pipeDir);
      await mkdir(pipeDir, { recursive: true });
      const mine: LockFile = {
        pid: process.pid,
        host: hostname(),
        command,
        since: new Date().toISOString(),
        nonce: randomBytes(12).toString('hex'),
        ...processIdentity(process.pid),
      };
      let told = false;
      for (;;) {
        const got = await tryCreate(lockPath, mine);
        if (got) return { ok: true, release: () => release(lockPath, mine.nonce) };
        const held = await readLock(lockPath);
        if (held === undefined) continue; // released between our create and read: try again at once
        if (isStale(held.file)) {
          // A `lock.break` pipe cannot read stands in the way of every takeover: said, never waited on.
          const blocker = await breakStale(lockPath, held.ino);
          if (blocker) return { ok: false, holder: publicHolder(blocker) };
          if (signal?.aborted) return { ok: false, holder: publicHolder(held.file) };
          continue;
        }
        // No process will ever release a lock file pipe cannot read: waiting for it would be forever.
        if (!wait || signal?.aborted || held.file.unreadable !== undefined) return { ok: false, holder: publicHolder(held.file) };
        if (!told) {
          told = true;
          onWait?.(publicHolder(held.file));
        }
        await sleep(pollMs, signal);
        if (signal?.aborted) return { ok: false, holder: publicHolder(held.file) };
      }
    },
  };
}

/**
 * Exclusive create of a complete lock file; false when it already exists. On a filesystem without hard links
 * readers may briefly see an empty file; readLock treats a young unparsable lock as "being written".
 */
function tryCreate(path: string, content: LockFile | { pid: number; host: string; nonce: string; start?: string }): Promise<boolean> {
  return createExclusive(path, `${JSON.stringify(content)}\n`, { mode: 0o644 });
}

async function readLock(path: string): Promise<{ file: LockFile; ino: bigint } | undefined> {
  try {
    // Bounded and non-blocking: a FIFO at the lock's name (any stage's command can write .pipe) must not hang pipe.
    const st = await lstat(path, { bigint: true });
    if (!st.isFile()) return unreadable(path, 'not a regular file');
    const read = await readBounded(path, MAX_LOCK_BYTES);
    if (!read.ok) {
      if (read.why === 'missing') return undefined;
      return unreadable(path, unreadText(read));
    }
    const text = read.bytes.toString('utf8');
    const parsed = JSON.parse(text) as unknown;
    // JSON that names no holder (`[]`, `5`, `{}`) is no lock pipe wrote: read as one held by pid 0 on no host, it was
    // never stale and never released, and every run waited for it forever.
    if (!isHolder(parsed)) return unreadable(path, 'JSON, but no pid and host');
    const file: LockFile = {
      pid: parsed.pid,
      host: parsed.host,
      command: typeof parsed.command === 'string' ? parsed.command : '',
      since: typeof parsed.since === 'string' ? parsed.since : '',
      nonce: typeof parsed.nonce === 'string' ? parsed.nonce : '',
      ...(typeof parsed.bootId === 'string' ? { bootId: parsed.bootId } : {}),
      ...(typeof parsed.start === 'string' ? { start: parsed.start } : {}),
    };
    return { file, ino: st.ino };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if (e instanceof SyntaxError) {
      // Young: being written by the O_EXCL fallback; look again shortly. Old: a foreign or damaged lock, reported
      // as held by "unknown" so the user sees it rather than have us delete a file we do not understand.
      const st = await stat(path).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs < 2000) {
        await sleep(10);
        return undefined;
      }
      return unreadable(path, 'not JSON');
    }
    throw e;
  }
}

/** What every lock pipe writes names: its holder's pid (a positive integer) and host. */
function isHolder(v: unknown): v is Partial<LockFile> & { pid: number; host: string } {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const { pid, host } = v as { pid?: unknown; host?: unknown };
  return Number.isSafeInteger(pid) && (pid as number) > 0 && typeof host === 'string' && host !== '';
}

/** A lock file pipe cannot read is reported as held, never deleted: the user removes a file pipe does not understand. */
function unreadable(path: string, why: string): { file: LockFile; ino: bigint } {
  return { file: { pid: 0, host: '?', command: `unreadable lock file ${path} (${why})`, since: '', nonce: '', unreadable: why }, ino: -1n };
}

/**
 * What to tell the user when the lock is held by a file pipe cannot read (`holder.unreadable`), else undefined.
 * Every command that takes the lock says the same, and none waits: no process will ever release it.
 */
export function unreadableLockText(holder: LockHolder): string | undefined {
  if (holder.unreadable === undefined) return undefined;
  return `the workspace is locked by an ${holder.command}: not a lock pipe wrote, so no process will ever release it; remove it if no pipe is running in this workspace`;
}

/** A lock file holds one line of JSON. */
export const MAX_LOCK_BYTES = 64 * 1024;

/**
 * Stale = written on this host by a process that no longer exists: its pid is gone, or (Linux) the machine has
 * rebooted since, or the pid now belongs to a process that started at another time.
 */
function isStale(holder: LockFile): boolean {
  if (holder.host !== hostname() || holder.pid <= 0) return false;
  if (!pidAlive(holder.pid)) return true;
  const now = processIdentity(holder.pid);
  if (holder.bootId && now.bootId && holder.bootId !== now.bootId) return true;
  if (holder.start && now.start && holder.start !== now.start) return true;
  return false;
}

/** Boot id and process start time where /proc has them (Linux); empty elsewhere, leaving the pid check alone. */
function processIdentity(pid: number): { bootId?: string; start?: string } {
  try {
    const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const start = procStat(pid)?.[19];
    return start ? { bootId, start } : { bootId };
  } catch {
    return {};
  }
}


/**
 * Remove the lock file if it is still the stale inode we saw, under `lock.break` so only one process does it.
 * Returns the `lock.break` holder when that file is one pipe cannot read (no breaker will ever remove it).
 */
async function breakStale(lockPath: string, staleIno: bigint): Promise<LockFile | undefined> {
  const breakPath = `${lockPath}.break`;
  const me = { pid: process.pid, host: hostname(), nonce: randomBytes(8).toString('hex'), ...processIdentity(process.pid) };
  if (!(await tryCreate(breakPath, me))) {
    // Someone else is breaking it. If that breaker died mid-way (a crash inside a few ms), clear its file.
    const b = await readLock(breakPath);
    if (b?.file.unreadable !== undefined) return b.file;
    if (b && isStale(b.file)) await unlink(breakPath).catch(() => undefined);
    else await sleep(20);
    return undefined;
  }
  try {
    const now = await readLock(lockPath);
    if (now && now.ino === staleIno && isStale(now.file)) await unlink(lockPath).catch(() => undefined);
  } finally {
    await unlink(breakPath).catch(() => undefined);
  }
}

/** Remove the lock only if it is still ours: a lock taken over from us (we were judged dead) is not touched. */
async function release(lockPath: string, nonce: string): Promise<void> {
  const held = await readLock(lockPath);
  if (held && held.file.nonce === nonce) await unlink(lockPath).catch(() => undefined);
}

function publicHolder(f: LockFile): LockHolder {
  return { pid: f.pid, host: f.host, command: f.command, since: f.since, ...(f.unreadable !== undefined ? { unreadable: f.unreadable } : {}) };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
