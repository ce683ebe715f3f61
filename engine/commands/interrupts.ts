/**
 * Ctrl-C for commands that run stages (`run`, `verify`). First Ctrl-C (or SIGTERM, SIGHUP, or a reader that went
 * away): cancel — running stages get SIGTERM and a grace period (`PIPE_KILL_GRACE_MS`, then SIGKILL), nothing new
 * starts, half outputs are removed, the lock is released, exit 130. Second: kill now — SIGKILL to every running
 * stage's process group, then the same cleanup. Third: exit at once; even then the 'exit' hooks kill what still
 * runs (engine/executors/local.ts) and remove the workspace lock (`releaseLockOnExit`).
 */
import { unlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { outputClosed } from './closed-output.js';
import { MAX_LOCK_BYTES } from '../../cache/lock.js';
import { readRegularFileSync } from '../../cache/read.js';

export interface Interrupts {
  /** Aborted on the first interrupt: cancel gracefully. */
  cancel: AbortSignal;
  /** Aborted on the second: kill without a grace period. */
  kill: AbortSignal;
  dispose(): void;
}

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

export function interrupts(): Interrupts {
  const cancel = new AbortController();
  const kill = new AbortController();
  let count = 0;
  const onSignal = (): void => {
    count += 1;
    if (count === 1) cancel.abort();
    else if (count === 2) kill.abort();
    else process.exit(130);
  };
  for (const s of SIGNALS) process.on(s, onSignal);
  const onClosed = (): void => cancel.abort();
  outputClosed.addEventListener('abort', onClosed, { once: true });
  if (outputClosed.aborted) cancel.abort();
  return {
    cancel: cancel.signal,
    kill: kill.signal,
    dispose: () => {
      for (const s of SIGNALS) process.off(s, onSignal);
      outputClosed.removeEventListener('abort', onClosed);
    },
  };
}

/**
 * While this process holds the workspace lock, remove it synchronously if the process exits without releasing it
 * (a third Ctrl-C, a crash). Only a lock written by this very process (pid and host) is removed. Returns the undo.
 */
export function releaseLockOnExit(pipeDir: string): () => void {
  const file = join(pipeDir, 'lock');
  const hook = (): void => {
    try {
      // Bounded and non-blocking: this runs as the process exits, and a FIFO put at the lock's name must not hang it.
      const held = JSON.parse(readRegularFileSync(file, MAX_LOCK_BYTES) ?? '') as { pid?: number; host?: string };
      if (held.pid === process.pid && held.host === hostname()) unlinkSync(file);
    } catch {
      // Gone already, or not ours.
    }
  };
  process.on('exit', hook);
  return () => process.off('exit', hook);
}
