/**
 * The messages between the coordinator (data-parallel.ts) and a replica, and the one function that serves them — in
 * a worker thread (replica-worker.ts) or in the coordinator's own thread — so both run the same code.
 */
import { selectBackend, type BackendName } from './backend.js';
import type { InputNorm } from './predict.js';
import { Replica, type GradBatch, type MicroBatch, type MicroGrad, type ReplicaInit } from './replica.js';

export type ReplicaRequest =
  | { op: 'init'; backend: BackendName; init: ReplicaInit }
  | { op: 'gradients'; batch: GradBatch; micro: MicroBatch[] }
  | { op: 'apply'; grads: Float32Array; stats: Float32Array | null }
  | { op: 'weights' }
  | { op: 'predict'; pixels: Uint8Array; n: number; height: number; width: number; norm: InputNorm };

export interface ReplicaReplies {
  init: null;
  gradients: MicroGrad[];
  apply: null;
  weights: Float32Array;
  predict: { probs: Float32Array; logits: Float32Array };
}

/** A request as it travels to a worker: with the id its reply carries. */
export type ReplicaEnvelope = ReplicaRequest & { id: number };
export type ReplicaReply = { id: number; value: unknown } | { id: number; error: string; stack?: string };

/** One replica's state in its thread: none until `init`. */
export class ReplicaHost {
  private replica: Replica | undefined;

  async handle(req: ReplicaRequest): Promise<unknown> {
    if (req.op === 'init') {
      await selectBackend(req.backend);
      this.replica?.dispose();
      this.replica = await Replica.create(req.init);
      return null;
    }
    const r = this.replica;
    if (r === undefined) throw new Error(`replica: "${req.op}" before "init"`);
    switch (req.op) {
      case 'gradients':
        return r.gradients(req.batch, req.micro);
      case 'apply':
        r.apply(req.grads, req.stats);
        return null;
      case 'weights':
        return r.weights();
      case 'predict':
        return r.predict(req.pixels, req.n, req.height, req.width, req.norm);
    }
  }

  dispose(): void {
    this.replica?.dispose();
    this.replica = undefined;
  }
}

/** Buffers a reply hands over instead of copying: each is owned by that reply alone (replica.ts allocates them). */
export function transferables(value: unknown): ArrayBuffer[] {
  if (value instanceof Float32Array) return [value.buffer as ArrayBuffer];
  if (Array.isArray(value)) return value.flatMap((v: MicroGrad) => [v.grads.buffer as ArrayBuffer, ...(v.stats ? [v.stats.buffer as ArrayBuffer] : [])]);
  if (value !== null && typeof value === 'object' && 'probs' in value) {
    const p = value as ReplicaReplies['predict'];
    return [p.probs.buffer as ArrayBuffer, p.logits.buffer as ArrayBuffer];
  }
  return [];
}
