/**
 * Worker threads that render phantoms in parallel (rendering is plain JS, so threads are what spreads it over cores).
 * Each image has its own forked random stream, so the bytes do not depend on which worker drew it or when.
 */
import type { Worker } from 'node:worker_threads';
import { startWorker } from '../../lib/start-worker.js';
import type { RenderReply, RenderRequest } from './worker.js';

type Done = { measuredCtr: number; photometric?: string };

export class RenderPool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly queue: RenderRequest[] = [];
  private readonly waiting = new Map<number, { resolve(d: Done): void; reject(e: Error): void }>();
  private failure: Error | null = null;

  constructor(size: number) {
    for (let i = 0; i < Math.max(1, size); i++) {
      const w = startWorker(new URL('./worker.js', import.meta.url));
      w.on('message', (m: RenderReply) => {
        const p = this.waiting.get(m.id);
        this.waiting.delete(m.id);
        if (p) 'error' in m ? p.reject(new Error(m.error)) : p.resolve(m);
        this.idle.push(w);
        this.pump();
      });
      w.on('error', (e) => {
        this.failure = e;
        for (const p of this.waiting.values()) p.reject(e);
        this.waiting.clear();
      });
      this.workers.push(w);
      this.idle.push(w);
    }
  }

  private pump(): void {
    while (this.idle.length && this.queue.length) this.idle.pop()!.postMessage(this.queue.shift()!);
  }

  render(req: RenderRequest): Promise<Done> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting.set(req.id, { resolve, reject });
      this.queue.push(req);
      this.pump();
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
