/** Expected command failures, turned into exit codes by the CLI without a stack trace. */
import { unreadableLockText } from '../../cache/lock.js';
import type { LockHolder } from '../../cache/types.js';

/** Bad usage or arguments: exit 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A failure with its own exit code and message (e.g. the workspace is locked). */
export class ExitError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
    this.name = 'ExitError';
  }
}

/**
 * A workspace lock held by a file pipe cannot read (cache/lock.ts unreadableLockText) fails the command at once, exit
 * 1, with the same paragraph whatever the command (`who` names it): no process will ever release that lock.
 */
export function refuseUnreadableLock(holder: LockHolder, who = 'pipe'): void {
  const unreadable = unreadableLockText(holder);
  if (unreadable) throw new ExitError(`${who}: ${unreadable}`, 1);
}
