/**
 * Debounce and coalesce file events: editors write a file in several steps (truncate, write, rename, chmod) and
 * tools save many files at once, so one save is a burst of events. A batch fires once the burst has been quiet for
 * `quietMs`, or after `maxWaitMs` of continuous events (a file written all the time still gets cycles).
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
    if (this.quietTimer) clearTimeout(this.quietTimer);
    const wait = Math.max(0, Math.min(this.quietMs, this.firstAt + this.maxWaitMs - Date.now()));
    this.quietTimer = setTimeout(() => this.flush(), wait);
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
}
