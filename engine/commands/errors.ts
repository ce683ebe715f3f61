/** Expected command failures, turned into exit codes by the CLI without a stack trace. */

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
