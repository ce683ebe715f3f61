/** Run `fn` over `items` with at most `limit` promises in flight (file reads; more only thrashes 2 cores/disk). */
export async function mapPool<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * Cooperative slicing for synchronous loops: `await slicer.tick()` after each unit yields to the event loop once
 * every `ms`, so progress output, timers and signals keep flowing while sync I/O runs.
 */
export class Slicer {
  private last = Date.now();
  constructor(private readonly ms = 20) {}

  async tick(): Promise<void> {
    if (Date.now() - this.last < this.ms) return;
    await new Promise((r) => setImmediate(r));
    this.last = Date.now();
  }
}
