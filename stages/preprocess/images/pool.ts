/**
 * A fixed pool of worker threads that load images, with results delivered in submission order (the shard writer
 * needs images in row order) while up to `2 × workers` requests are in flight to keep every core busy.
 */
import type { Worker } from 'node:worker_threads';
import { startWorker } from '../../lib/start-worker.js';
import type { LoadReply, LoadRequest } from './worker.js';

export class LoadPool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly waiting = new Map<number, { resolve(p: Uint8Array): void; reject(e: Error): void }>();
  private readonly queue: Array<{ req: LoadRequest }> = [];
  private failure: Error | null = null;
  /** Request ids are the pool's own: callers may abandon requests (skip_unreadable restarts), ids never collide. */
  private nextId = 0;

  constructor(
    size: number,
    private readonly maxPixels: number,
  ) {
    for (let i = 0; i < Math.max(1, size); i++) {
      const w = startWorker(new URL('./worker.js', import.meta.url));
      w.on('message', (m: LoadReply) => this.onReply(w, m));
      w.on('error', (e) => this.onCrash(e));
      this.workers.push(w);
      this.idle.push(w);
    }
  }

  private onReply(w: Worker, m: LoadReply): void {
    const p = this.waiting.get(m.id);
    this.waiting.delete(m.id);
    if (p) 'error' in m ? p.reject(new Error(m.error)) : p.resolve(m.pixels);
    this.idle.push(w);
    this.pump();
  }

  private onCrash(e: Error): void {
    this.failure = e;
    for (const p of this.waiting.values()) p.reject(e);
    this.waiting.clear();
  }

  private pump(): void {
    while (this.idle.length && this.queue.length) {
      const w = this.idle.pop()!;
      w.postMessage(this.queue.shift()!.req);
    }
  }

  load(file: string, size: number): Promise<Uint8Array> {
    if (this.failure) return Promise.reject(this.failure);
    const req: LoadRequest = { id: this.nextId++, file, size, maxPixels: this.maxPixels };
    return new Promise((resolve, reject) => {
      this.waiting.set(req.id, { resolve, reject });
      this.queue.push({ req });
      this.pump();
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/**
 * Load every file through the pool and yield the pixels in order; at most `window` loads are in flight, so memory
 * stays bounded however many images there are.
 */
export async function* loadInOrder(pool: LoadPool, files: string[], size: number, window: number): AsyncGenerator<Uint8Array> {
  const pending: Array<Promise<Uint8Array>> = [];
  let next = 0;
  const refill = (): void => {
    while (next < files.length && pending.length < window) {
      const p = pool.load(files[next]!, size);
      p.catch(() => undefined); // observed when awaited below; avoid an unhandled rejection meanwhile
      pending.push(p);
      next++;
    }
  };
  refill();
  while (pending.length) {
    const px = await pending.shift()!;
    refill();
    yield px;
  }
}
