import { readdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { workspaceLock, type LockHolder } from '../../cache/index.js';
import { startChild, tempDir } from './helpers.js';

// Child: take the lock, say so, hold it until told to release (a line on stdin), then exit.
const HOLD = `
  const lock = cache.workspaceLock(args.dir, 'pipe run child');
  const r = await lock.acquire({ wait: !!args.wait });
  if (!r.ok) { process.stdout.write('HELD ' + JSON.stringify(r.holder) + '\\n'); process.exit(0); }
  process.stdout.write('LOCKED\\n');
  if (args.crash) process.exit(0); // die without releasing: a stale lock
  process.stdin.once('data', async () => { await r.release(); process.stdout.write('RELEASED\\n'); process.exit(0); });
`;

describe('WorkspaceLock', () => {
  it('a second process sees the holder; wait mode acquires once it is released', async () => {
    const d = tempDir();
    const child = startChild(d, HOLD, { dir: `${d}/.pipe` });
    await child.waitFor('LOCKED');
    const lock = workspaceLock(`${d}/.pipe`, 'pipe run parent');
    const busy = await lock.acquire({ wait: false });
    expect(busy.ok).toBe(false);
    if (!busy.ok) expect(busy.holder).toMatchObject({ pid: child.proc.pid, host: hostname(), command: 'pipe run child' });

    // The child releases only once the parent says it waits: the acquire cannot have settled before that.
    const waits: LockHolder[] = [];
    let settledBeforeRelease = false;
    let settled = false;
    const pending = lock.acquire({
      wait: true,
      onWait: (h) => {
        waits.push(h);
        settledBeforeRelease = settled;
        child.proc.stdin!.write('go\n');
      },
    });
    void pending.then(() => (settled = true));
    const got = await pending;
    expect(got.ok).toBe(true);
    expect(settledBeforeRelease).toBe(false);
    expect(waits).toHaveLength(1);
    expect(waits[0]!.pid).toBe(child.proc.pid);
    expect((await child.done).stdout).toContain('RELEASED');

    // now the child is the one told who holds it
    const second = await startChild(d, HOLD, { dir: `${d}/.pipe` }).done;
    expect(second.stdout).toContain(`"pid":${process.pid}`);
    if (got.ok) await got.release();
    expect(readdirSync(`${d}/.pipe`)).toEqual([]);
  });

  it('mutual exclusion: three processes doing unsafe read-modify-write under the lock lose no update', async () => {
    const d = tempDir();
    writeFileSync(`${d}/counter`, '0');
    const body = `
      const fs = await import('node:fs');
      const lock = cache.workspaceLock(args.dir, 'worker', { pollMs: 5 });
      for (let i = 0; i < 10; i++) {
        const r = await lock.acquire({ wait: true });
        if (!r.ok) throw new Error('not acquired');
        const n = Number(fs.readFileSync(args.counter, 'utf8'));
        await new Promise((res) => setTimeout(res, 3)); // widen the race window
        fs.writeFileSync(args.counter, String(n + 1));
        await r.release();
      }`;
    const kids = [0, 1, 2].map(() => startChild(d, body, { dir: `${d}/.pipe`, counter: `${d}/counter` }).done);
    for (const r of await Promise.all(kids)) expect(r.code, r.stderr).toBe(0);
    const { readFileSync } = await import('node:fs');
    expect(readFileSync(`${d}/counter`, 'utf8')).toBe('30');
    expect(readdirSync(`${d}/.pipe`)).toEqual([]);
  });

  it('a lock left by a dead process on this host is taken over', async () => {
    const d = tempDir();
    const dead = await startChild(d, HOLD, { dir: `${d}/.pipe`, crash: true }).done;
    expect(dead.stdout).toContain('LOCKED');
    expect(readdirSync(`${d}/.pipe`)).toEqual(['lock']);
    const r = await workspaceLock(`${d}/.pipe`, 'pipe run').acquire({ wait: false });
    expect(r.ok).toBe(true);
    if (r.ok) await r.release();
  });

  it('two processes racing to take over one stale lock: exactly one wins', async () => {
    const d = tempDir();
    for (let round = 0; round < 3; round++) {
      const dead = await startChild(d, HOLD, { dir: `${d}/.pipe`, crash: true }).done;
      expect(dead.stdout).toContain('LOCKED');
      const racers = [0, 1, 2].map(() => startChild(d, HOLD, { dir: `${d}/.pipe` }));
      // Wait until every racer has either won or reported the holder, then let the winner go.
      const outcomes = await Promise.all(
        racers.map(async (c) => {
          await Promise.race([c.waitFor('LOCKED'), c.done]);
          return c;
        }),
      );
      for (const c of outcomes) c.proc.stdin!.write('go\n');
      const results = await Promise.all(outcomes.map((c) => c.done));
      expect(results.filter((r) => r.stdout.includes('LOCKED'))).toHaveLength(1);
      expect(results.filter((r) => r.stdout.includes('HELD'))).toHaveLength(2);
      expect(readdirSync(`${d}/.pipe`)).toEqual([]);
    }
  });

  it('a live pid that is not the holder (pid reused after a crash or reboot) does not keep the lock', async () => {
    const d = tempDir();
    const { mkdirSync } = await import('node:fs');
    mkdirSync(`${d}/.pipe`);
    const lock = workspaceLock(`${d}/.pipe`, 'me');
    const base = { pid: process.pid, host: hostname(), command: 'old run', since: 'then', nonce: 'n' };
    // Our own pid is alive, so only the start time / boot id can tell the difference.
    writeFileSync(`${d}/.pipe/lock`, JSON.stringify({ ...base, start: '1' }));
    const r1 = await lock.acquire({ wait: false });
    expect(r1.ok).toBe(true);
    if (r1.ok) await r1.release();
    writeFileSync(`${d}/.pipe/lock`, JSON.stringify({ ...base, bootId: 'another-boot' }));
    const r2 = await lock.acquire({ wait: false });
    expect(r2.ok).toBe(true);
    if (r2.ok) await r2.release();
    // Same pid, no start/boot recorded: alive, so held.
    writeFileSync(`${d}/.pipe/lock`, JSON.stringify(base));
    expect((await lock.acquire({ wait: false })).ok).toBe(false);
  });

  it('an unreadable lock file is reported, not deleted', async () => {
    const d = tempDir();
    const { mkdirSync, utimesSync, readFileSync } = await import('node:fs');
    mkdirSync(`${d}/.pipe`);
    writeFileSync(`${d}/.pipe/lock`, 'not json');
    const old = new Date(Date.now() - 10_000);
    utimesSync(`${d}/.pipe/lock`, old, old);
    const r = await workspaceLock(`${d}/.pipe`, 'me').acquire({ wait: false });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.holder.command).toContain('unreadable lock file');
    expect(readFileSync(`${d}/.pipe/lock`, 'utf8')).toBe('not json');
  });

  it('a lock file that is a FIFO or too large is unreadable: reported at once even when waiting (no process will release it), never read, never deleted', async () => {
    const d = tempDir();
    const { mkdirSync, lstatSync, rmSync, statSync } = await import('node:fs');
    const { execFileSync } = await import('node:child_process');
    mkdirSync(`${d}/.pipe`);
    execFileSync('mkfifo', [`${d}/.pipe/lock`]);
    let onWait = 0;
    // A plain read of the FIFO would block until a writer comes: the test would time out.
    const r = await workspaceLock(`${d}/.pipe`, 'me').acquire({ wait: true, onWait: () => onWait++ });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.holder.unreadable).toBe('not a regular file');
      expect(r.holder.command).toBe(`unreadable lock file ${d}/.pipe/lock (not a regular file)`);
    }
    expect(onWait).toBe(0);
    expect(lstatSync(`${d}/.pipe/lock`).isFIFO()).toBe(true);
    rmSync(`${d}/.pipe/lock`);
    writeFileSync(`${d}/.pipe/lock`, `{"pid":1,"host":"h","pad":"${'x'.repeat(70_000)}"}`);
    const big = await workspaceLock(`${d}/.pipe`, 'me').acquire({ wait: true });
    expect(big.ok).toBe(false);
    if (!big.ok) expect(big.holder.unreadable).toBe(`${statSync(`${d}/.pipe/lock`).size} bytes`);
  });

  it('a lock file that is JSON but names no holder (a list, a number, null, {}, a pid that is text) is unreadable: reported at once, not waited on forever, never deleted', async () => {
    const d = tempDir();
    const { mkdirSync, readFileSync } = await import('node:fs');
    mkdirSync(`${d}/.pipe`);
    for (const text of ['[1, 2]', '5', '"x"', 'null', '{}', '{"pid":"7","host":"h"}', `{"pid":0,"host":"${hostname()}"}`, '{"pid":7,"host":""}']) {
      writeFileSync(`${d}/.pipe/lock`, text);
      let onWait = 0;
      // Read as held by pid 0 on no host, it was never stale, so a waiting acquire polled it until killed.
      const r = await workspaceLock(`${d}/.pipe`, 'me', { pollMs: 5 }).acquire({ wait: true, onWait: () => onWait++ });
      expect(r.ok, text).toBe(false);
      if (!r.ok) {
        expect(r.holder.unreadable, text).toBe('JSON, but no pid and host');
        expect(r.holder.command).toBe(`unreadable lock file ${d}/.pipe/lock (JSON, but no pid and host)`);
      }
      expect(onWait, text).toBe(0);
      expect(readFileSync(`${d}/.pipe/lock`, 'utf8')).toBe(text);
    }
  });

  it('a stale lock with a lock.break pipe cannot read (FIFO, old junk) next to it: reported at once, not looped on', async () => {
    const d = tempDir();
    const { mkdirSync, utimesSync } = await import('node:fs');
    const { execFileSync } = await import('node:child_process');
    mkdirSync(`${d}/.pipe`);
    // A lock of a process that is gone (stale: taken over, under lock.break, if lock.break lets it).
    writeFileSync(`${d}/.pipe/lock`, JSON.stringify({ pid: 999_999_999, host: hostname(), command: 'gone', since: '', nonce: 'n' }));
    execFileSync('mkfifo', [`${d}/.pipe/lock.break`]);
    const r = await workspaceLock(`${d}/.pipe`, 'me').acquire({ wait: true });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.holder.command).toBe(`unreadable lock file ${d}/.pipe/lock.break (not a regular file)`);
    const { rmSync } = await import('node:fs');
    rmSync(`${d}/.pipe/lock.break`);
    writeFileSync(`${d}/.pipe/lock.break`, 'junk');
    const old = new Date(Date.now() - 3600_000);
    utimesSync(`${d}/.pipe/lock.break`, old, old);
    const j = await workspaceLock(`${d}/.pipe`, 'me').acquire({ wait: false });
    expect(j.ok).toBe(false);
    if (!j.ok) expect(j.holder.unreadable).toBe('not JSON');
  });

  it('release leaves a lock that is no longer ours', async () => {
    const d = tempDir();
    const r = await workspaceLock(`${d}/.pipe`, 'pipe run').acquire({ wait: false });
    expect(r.ok).toBe(true);
    // someone judged us dead and took over
    writeFileSync(`${d}/.pipe/lock`, JSON.stringify({ pid: 1, host: hostname(), command: 'other', since: '', nonce: 'x' }));
    if (r.ok) await r.release();
    expect(readdirSync(`${d}/.pipe`)).toEqual(['lock']);
  });

  it('a holder on another host is reported, never taken over; abort stops waiting', async () => {
    const d = tempDir();
    const { mkdirSync } = await import('node:fs');
    mkdirSync(`${d}/.pipe`);
    writeFileSync(`${d}/.pipe/lock`, JSON.stringify({ pid: 999999, host: 'other-node', command: 'pipe run x', since: 'then', nonce: 'n' }));
    const lock = workspaceLock(`${d}/.pipe`, 'me', { pollMs: 20 });
    expect(await lock.acquire({ wait: false })).toEqual({
      ok: false,
      holder: { pid: 999999, host: 'other-node', command: 'pipe run x', since: 'then' },
    });
    const ac = new AbortController();
    // Aborted once it is really waiting (its first wait reported), not after a guessed delay.
    const r = await lock.acquire({ wait: true, signal: ac.signal, onWait: () => ac.abort() });
    expect(r.ok).toBe(false);
  });
});
