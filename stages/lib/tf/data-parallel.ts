/**
 * Data-parallel training and inference over model replicas, one per worker thread, each with its own tfjs engine and
 * backend (for wasm, its own XNNPACK instance and pipe's gradient kernels): the way a one-thread backend uses every
 * core. (tfjs's threaded wasm build is not an option in Node: tfjs turns it off there, and its pthreads would only
 * spread XNNPACK's convolutions, not the JS kernels.) Backends that are multi-threaded themselves (tfjs-node, GPUs)
 * get one replica in the stage's own thread.
 *
 * A training step: every replica gets the whole batch and computes the gradients of its share of the batch's
 * micro-batches (replica.ts); the coordinator adds them in micro-batch order (float64, then float32), clips by the
 * global norm, and sends the one result to every replica, whose optimizers then take the same step — so the
 * replicas' weights stay identical, and the numbers do not depend on the number of workers.
 *
 * Inference: whole batches of a fixed composition go to whichever replica is free, results land in row order.
 */
import type { Worker } from 'node:worker_threads';
import type * as tf from '@tensorflow/tfjs';
import type { ShardSet } from '../shards.js';
import { startWorker } from '../start-worker.js';
import { clipByGlobalNorm } from './adamw.js';
import { runsOnOneThread, type BackendName } from './backend.js';
import type { InputNorm } from './predict.js';
import { microBatches, replicaInit, type GradBatch, type MicroBatch, type MicroGrad, type ReplicaInit } from './replica.js';
import { ReplicaHost, type ReplicaEnvelope, type ReplicaReplies, type ReplicaReply, type ReplicaRequest } from './replica-protocol.js';

/** A replica failed (an exception in its thread, or the thread died); the message names which. */
export class ReplicaError extends Error {
  constructor(message: string, stack?: string) {
    super(message);
    this.name = 'ReplicaError';
    if (stack !== undefined) this.stack = `${this.name}: ${message}\n    in the replica thread: ${stack}`;
  }
}

interface ReplicaHandle {
  call<K extends ReplicaRequest['op']>(req: Extract<ReplicaRequest, { op: K }>): Promise<ReplicaReplies[K]>;
  close(): Promise<void>;
}

/** A replica in a worker thread. */
class WorkerReplica implements ReplicaHandle {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private nextId = 0;
  private failure: Error | null = null;
  private closing = false;

  constructor(private readonly index: number) {
    this.worker = startWorker(new URL('./replica-worker.js', import.meta.url));
    this.worker.on('message', (m: ReplicaReply) => {
      const p = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (p === undefined) return;
      if ('error' in m) p.reject(new ReplicaError(`replica ${this.index}: ${m.error}`, m.stack));
      else p.resolve(m.value);
    });
    this.worker.on('error', (e) => this.fail(new ReplicaError(`replica ${this.index} crashed: ${e.message}`, e.stack)));
    this.worker.on('exit', (code) => {
      if (!this.closing) this.fail(new ReplicaError(`replica ${this.index}'s thread exited unexpectedly (code ${code})`));
    });
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const p of this.waiting.values()) p.reject(e);
    this.waiting.clear();
  }

  call<K extends ReplicaRequest['op']>(req: Extract<ReplicaRequest, { op: K }>): Promise<ReplicaReplies[K]> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...req, id } satisfies ReplicaEnvelope);
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    this.fail(new ReplicaError(`replica ${this.index} was closed`));
    await this.worker.terminate();
  }
}

/** A replica in this thread (multi-threaded backends): the same requests, served by the same code. */
class LocalReplica implements ReplicaHandle {
  private readonly host = new ReplicaHost();

  async call<K extends ReplicaRequest['op']>(req: Extract<ReplicaRequest, { op: K }>): Promise<ReplicaReplies[K]> {
    return (await this.host.handle(req)) as ReplicaReplies[K];
  }

  async close(): Promise<void> {
    this.host.dispose();
  }
}

export interface PoolOptions {
  backend: BackendName;
  /** Worker threads wanted (the stage's `resources.cpus`); one-thread backends only. */
  workers: number;
  /** The model to replicate (its current weights). */
  model: tf.LayersModel;
  /** Given for training: each replica then has its own AdamW. */
  optimizer?: ReplicaInit['optimizer'];
}

/** The summed gradient of one batch, before clipping. */
export interface BatchGradient {
  grads: Float32Array;
  /** The batch's mean loss. */
  loss: number;
  /** Moving statistics to adopt (the micro-batches' mean), or null when the model has none. */
  stats: Float32Array | null;
}

export class ReplicaPool {
  private constructor(private readonly replicas: ReplicaHandle[]) {}

  /** How many replicas (threads) share the work. */
  get size(): number {
    return this.replicas.length;
  }

  static async start(o: PoolOptions): Promise<ReplicaPool> {
    const n = runsOnOneThread(o.backend) ? Math.max(1, Math.floor(o.workers)) : 1;
    const replicas: ReplicaHandle[] = runsOnOneThread(o.backend)
      ? Array.from({ length: n }, (_, i) => new WorkerReplica(i))
      : [new LocalReplica()];
    const pool = new ReplicaPool(replicas);
    try {
      const init = replicaInit(o.model, o.optimizer);
      await Promise.all(replicas.map((r) => r.call({ op: 'init', backend: o.backend, init })));
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  /**
   * The gradient of the batch's mean loss: micro-batches of `microBatch` rows, shared out in contiguous runs, their
   * gradients added in micro-batch order (float64 accumulators) whichever replica computed them.
   */
  async gradients(batch: GradBatch, microBatch: number): Promise<BatchGradient> {
    const micro = microBatches(batch.labels.length, microBatch);
    const shares = this.replicas.map((_, r) => micro.slice(Math.floor((r * micro.length) / this.size), Math.floor(((r + 1) * micro.length) / this.size)));
    const parts: MicroGrad[] = (
      await Promise.all(this.replicas.map((rep, r) => (shares[r]!.length > 0 ? rep.call({ op: 'gradients', batch, micro: shares[r] as MicroBatch[] }) : Promise.resolve([]))))
    ).flat();
    return { grads: sumInOrder(parts.map((p) => p.grads)), loss: parts.reduce((s, p) => s + p.loss, 0), stats: meanStats(parts) };
  }

  /** Every replica takes the same optimizer step (and adopts the same moving statistics). */
  async apply(grads: Float32Array, stats: Float32Array | null): Promise<void> {
    await Promise.all(this.replicas.map((r) => r.call({ op: 'apply', grads, stats })));
  }

  /** One training step: gradients, clipping by global norm (0 = off), the update. Returns the loss and the norm. */
  async step(batch: GradBatch, microBatch: number, gradClip: number): Promise<{ loss: number; norm: number }> {
    const g = await this.gradients(batch, microBatch);
    const norm = clipByGlobalNorm(g.grads, gradClip);
    await this.apply(g.grads, g.stats);
    return { loss: g.loss, norm };
  }

  /** Every weight of replica `r` (model.weights order), laid end to end. */
  weights(r = 0): Promise<Float32Array> {
    const rep = this.replicas[r];
    if (rep === undefined) return Promise.reject(new RangeError(`no replica ${r} (pool of ${this.size})`));
    return rep.call({ op: 'weights' });
  }

  /**
   * Eval-mode predictions for `rows` of a shard set: batches of `batchSize` rows in order (so results do not depend
   * on the number of replicas), each on the next free replica, with the next batch read from disk meanwhile.
   */
  async predictRows(
    set: ShardSet,
    rows: readonly number[],
    norm: InputNorm,
    batchSize: number,
    onBatch?: (done: number) => void,
  ): Promise<{ probs: Float32Array; logits: Float32Array }> {
    const { height, width } = set.index;
    const probs = new Float32Array(rows.length * 2);
    const logits = new Float32Array(rows.length * 2);
    let next = 0;
    let done = 0;
    const lane = async (rep: ReplicaHandle): Promise<void> => {
      while (next < rows.length) {
        const start = next;
        const idx = rows.slice(start, start + batchSize);
        next += idx.length;
        const pixels = await set.readBatch(idx);
        const r = await rep.call({ op: 'predict', pixels, n: idx.length, height, width, norm });
        probs.set(r.probs, start * 2);
        logits.set(r.logits, start * 2);
        done += idx.length;
        onBatch?.(done);
      }
    };
    await Promise.all(this.replicas.map(lane));
    return { probs, logits };
  }

  async close(): Promise<void> {
    await Promise.all(this.replicas.map((r) => r.close()));
  }
}

/** Σ parts[k] in k order, accumulated in float64, times `scale`, rounded once to float32. */
export function sumInOrder(parts: readonly Float32Array[], scale = 1): Float32Array {
  const len = parts[0]?.length ?? 0;
  const acc = new Float64Array(len);
  for (const p of parts) {
    if (p.length !== len) throw new RangeError(`gradient parts of different lengths (${p.length} ≠ ${len})`);
    for (let i = 0; i < len; i++) acc[i] += p[i]!;
  }
  if (scale !== 1) for (let i = 0; i < len; i++) acc[i] *= scale;
  return Float32Array.from(acc);
}

function meanStats(parts: readonly MicroGrad[]): Float32Array | null {
  const stats = parts.map((p) => p.stats).filter((s): s is Float32Array => s !== null);
  return stats.length === 0 ? null : sumInOrder(stats, 1 / stats.length);
}
