/**
 * A reader that went away (`pipe run p.yaml -n --json | head -1`): Node ignores SIGPIPE, so the next write to the
 * closed stdout (or stderr) fails with EPIPE on the stream — an unhandled 'error' event and a stack trace, unless
 * someone listens. The CLI listens once, for both streams: later writes go nowhere, quietly. Quick commands simply
 * finish; long ones (`run`, `watch`) stop on `outputClosed` as on Ctrl-C — cancelling stages, removing half outputs,
 * releasing the lock — and the CLI exits 141 (128 + SIGPIPE), as a Unix tool killed by SIGPIPE would.
 */

const closed = new AbortController();
/** Aborted when stdout or stderr is closed by its reader (or fails otherwise, e.g. EIO from a vanished terminal). */
export const outputClosed: AbortSignal = closed.signal;

/** The exit code of a command whose output was closed under it. */
export const CLOSED_OUTPUT_EXIT = 141;

export function watchForClosedOutput(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: Error) => {
      if (!closed.signal.aborted) closed.abort(e);
      // Also when the error comes after the command has finished (its last writes failed on the way out).
      process.exitCode = CLOSED_OUTPUT_EXIT;
    });
  }
}
