/**
 * Debounce and coalesce file events: editors write a file in several steps (truncate, write, rename, chmod) and
 * tools save many files at once, so one save is a burst of events. A batch fires once the burst has been quiet for
 * `quietMs`, or after `maxWaitMs` of continuous events (a file written all the time still gets cycles).
 *
 * "Quiet" is what this process saw, not only the clock: after a stall (a loaded machine, a long synchronous step)
 * the expired timer runs before the event loop reads the file events that queued meanwhile, so the timer only asks
 * for a flush, and the flush waits one turn of the loop (setImmediate, after the I/O phase). Events read in that
 * turn, and raw activity on a pending path (`activity()`: a watcher saw the file change before it reports it), keep
 * the batch open: one save burst stays one batch, however the machine is loaded.
 */
export class Coalescer {
  private readonly paths = new Set<string>();
  private quietTimer: NodeJS.Timeout | undefined;
  private firstAt = 0;

  constructor(
    private readonly quietMs: number,
    private readonly maxWaitMs: number,
    private readonly fire: (paths: string[]) => void,
  ) {}

  push(path: string): void {
    if (this.paths.size === 0) this.firstAt = Date.now();
    this.paths.add(path);
    this.rearm();
  }

  /** Something changed that will be reported soon (a raw event): a pending batch waits for it. */
  activity(): void {
    if (this.paths.size > 0) this.rearm();
  }

  /** Fire now with whatever is pending (nothing when empty). */
  flush(): void {
    if (this.quietTimer) clearTimeout(this.quietTimer);
    this.quietTimer = undefined;
    if (this.paths.size === 0) return;
    const batch = [...this.paths];
    this.paths.clear();
    this.fire(batch);
  }

  close(): void {
    if (this.quietTimer) clearTimeout(this.quietTimer);
    this.quietTimer = undefined;
    this.paths.clear();
  }

  private rearm(): void {
    if (this.quietTimer) clearTimeout(this.quietTimer);
    const wait = Math.max(0, Math.min(this.quietMs, this.firstAt + this.maxWaitMs - Date.now()));
    const timer = setTimeout(() => {
      // An event read in the loop's turn since re-armed the timer (another one now): the burst goes on, unless it has
      // gone on for maxWaitMs.
      setImmediate(() => {
        if (this.quietTimer === timer || Date.now() >= this.firstAt + this.maxWaitMs) this.flush();
      });
    }, wait);
    this.quietTimer = timer;
  }
}
