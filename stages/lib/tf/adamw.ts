/**
 * AdamW (Loshchilov & Hutter) with DECOUPLED weight decay, as torch.optim.AdamW: each step first shrinks every
 * weight, w ← w − lr·wd·w, directly on the weights (not through the gradient, so Adam's per-weight scaling does not
 * touch the decay), then takes a plain Adam step. tfjs ships only coupled L2 (via regularisers), hence this class.
 * Defaults match torch: β1 0.9, β2 0.999, ε 1e-8.
 */
import * as tf from '@tensorflow/tfjs';

export interface AdamWOptions {
  lr: number;
  weightDecay: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
}

export class AdamW {
  readonly lr: number;
  readonly weightDecay: number;
  private readonly adam: tf.AdamOptimizer;

  constructor(o: AdamWOptions) {
    if (!(o.lr > 0)) throw new RangeError(`AdamW learning rate must be > 0, got ${o.lr}`);
    if (!(o.weightDecay >= 0)) throw new RangeError(`AdamW weight decay must be ≥ 0, got ${o.weightDecay}`);
    this.lr = o.lr;
    this.weightDecay = o.weightDecay;
    this.adam = tf.train.adam(o.lr, o.beta1 ?? 0.9, o.beta2 ?? 0.999, o.epsilon ?? 1e-8);
  }

  /** One step. `grads` maps variable names (tf.Variable.name) to gradients, as tf.variableGrads returns them. */
  applyGradients(grads: tf.NamedTensorMap, variables: readonly tf.Variable[]): void {
    const keep = 1 - this.lr * this.weightDecay;
    if (keep !== 1) {
      for (const v of variables) {
        if (grads[v.name] === undefined) continue; // frozen or unused: torch skips params without .grad too
        tf.tidy(() => v.assign(tf.mul(v, keep)));
      }
    }
    this.adam.applyGradients(Object.entries(grads).map(([name, tensor]) => ({ name, tensor })));
  }

  dispose(): void {
    this.adam.dispose();
  }
}

/**
 * Gradient clipping by global L2 norm (torch.nn.utils.clip_grad_norm_) over the gradients of every variable laid end to
 * end: if ‖g‖ > maxNorm, every gradient is scaled by maxNorm/(‖g‖ + 1e-6), in place. The norm is summed in float64
 * in index order, so it does not depend on how the gradient was computed. Returns the norm before clipping.
 */
export function clipByGlobalNorm(grads: Float32Array, maxNorm: number): number {
  let sq = 0;
  for (let i = 0; i < grads.length; i++) sq += grads[i]! * grads[i]!;
  const norm = Math.sqrt(sq);
  if (!(maxNorm > 0) || norm <= maxNorm || !Number.isFinite(norm)) return norm;
  const scale = maxNorm / (norm + 1e-6);
  for (let i = 0; i < grads.length; i++) grads[i] = grads[i]! * scale;
  return norm;
}
