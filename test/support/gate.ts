/**
 * Gated fake commands: a stage (or SLURM job) whose command is `gates.cmd('a')` says it started and then waits until
 * the test calls `gates.open('a')`. Concurrency and cancellation tests are driven by these instead of sleeps: the
 * test decides when each command ends, so a loaded machine changes how long a test takes, never what it sees.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('./gate.sh', import.meta.url));

/** What happened, in the order the commands wrote it: `start a`, `end a`. */
export interface GateEvent {
  what: 'start' | 'end';
  name: string;
}

/**
 * Resolves once `pred()` holds (looked at every 10 ms: a condition, never a guessed delay); fails after `ms` saying
 * what it waited for.
 */
export async function until(pred: () => boolean, what: string | (() => string), ms = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export class Gates {
  /** `dir`: where the gate files and the log live (made if missing; inside a workspace fixture it goes with it). */
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    if (!existsSync(join(dir, 'log'))) writeFileSync(join(dir, 'log'), '');
  }

  /** The shell command of a gated command named `name`, then `then` once its gate is open (a stage's real work). */
  cmd(name: string, then?: string): string {
    return `sh ${script} ${this.dir} ${name}${then ? `; ${then}` : ''}`;
  }

  log(): GateEvent[] {
    return readFileSync(join(this.dir, 'log'), 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => {
        const [what, name] = l.split(' ');
        return { what: what as GateEvent['what'], name: name! };
      });
  }

  /** Names of the commands that started, in order. */
  started(): string[] {
    return this.log()
      .filter((e) => e.what === 'start')
      .map((e) => e.name);
  }

  /** Started and not ended yet. */
  running(): string[] {
    const now = new Set<string>();
    for (const e of this.log()) e.what === 'start' ? now.add(e.name) : now.delete(e.name);
    return [...now];
  }

  /** The most commands that were between their start and their end at once (from the log's order). */
  maxRunning(): number {
    let n = 0;
    let max = 0;
    for (const e of this.log()) max = Math.max(max, (n += e.what === 'start' ? 1 : -1));
    return max;
  }

  /** Pairs of commands that were running at the same time. */
  overlapping(): Array<[string, string]> {
    const now = new Set<string>();
    const pairs: Array<[string, string]> = [];
    for (const e of this.log()) {
      if (e.what === 'end') now.delete(e.name);
      else {
        for (const other of now) pairs.push([other, e.name]);
        now.add(e.name);
      }
    }
    return pairs;
  }

  /** Closes every gate and empties the log (the same commands can be run again). */
  reset(): void {
    for (const f of readdirSync(this.dir)) rmSync(join(this.dir, f), { force: true });
    writeFileSync(join(this.dir, 'log'), '');
  }

  open(...names: string[]): void {
    for (const name of names) writeFileSync(join(this.dir, `${name}.open`), '');
  }

  /** Opens every gate that was waited at (a test's `finally`: nothing is left polling after a failure). */
  openAll(): void {
    this.open(...this.started());
  }

  isOpen(name: string): boolean {
    return existsSync(join(this.dir, `${name}.open`));
  }

  /** Resolves once `pred` holds on the log; fails after `ms` naming what did start. */
  until(pred: (g: Gates) => boolean, what: string, ms = 60_000): Promise<void> {
    return until(() => pred(this), () => `${what}; gate log:\n${readFileSync(join(this.dir, 'log'), 'utf8')}`, ms);
  }

  /** Resolves once `name` has started. */
  whenStarted(name: string, ms?: number): Promise<void> {
    return this.until((g) => g.started().includes(name), `${name} to start`, ms);
  }

  /**
   * Lets `total` commands through one at a time, oldest running first: opens a gate only while `limit` commands
   * are running (or every remaining one has started), so a scheduler that starts more than `limit` at once shows
   * in `maxRunning()`. Returns the order they started in.
   */
  async release(total: number, limit: number): Promise<string[]> {
    for (let opened = 0; opened < total; opened++) {
      await this.until((g) => g.running().filter((n) => !g.isOpen(n)).length >= Math.min(limit, total - opened), `${Math.min(limit, total - opened)} running command(s)`);
      const next = this.running().find((n) => !this.isOpen(n))!;
      this.open(next);
    }
    return this.started();
  }
}
