/**
 * The classifier architectures `train/classifier` offers (`arch:`), as tfjs-layers Sequential models that output raw
 * logits for 2 classes. All are "conv blocks → global average pooling → dense": small enough to train on CPUs in
 * minutes on 128² phantoms, while keeping the shape of a real CXR classifier. Every initialiser is seeded (the seed
 * plus the layer's position), so the same seed builds bit-identical initial weights.
 *
 * The PyTorch twin used by bench/train.ts mirrors `blockChannels` exactly (same layers, shapes and parameter count).
 */
import * as tf from '@tensorflow/tfjs';

export const ARCHS = ['small_cnn', 'tiny_cnn', 'small_cnn_bn', 'wide_cnn'] as const;
export type Arch = (typeof ARCHS)[number];

export interface ArchSpec {
  /** Output channels of each conv block (3×3 conv, same padding, [BN], ReLU, 2×2 max-pool). */
  blockChannels: number[];
  batchNorm: boolean;
  description: string;
}

export const ARCH_SPECS: Record<Arch, ArchSpec> = {
  small_cnn: {
    blockChannels: [16, 32, 64, 128],
    batchNorm: false,
    description: '4 blocks conv3×3(16/32/64/128)-ReLU-maxpool2, GAP, dense 2 (~98k parameters); the default',
  },
  tiny_cnn: {
    blockChannels: [8, 16, 32],
    batchNorm: false,
    description: '3 blocks conv3×3(8/16/32)-ReLU-maxpool2, GAP, dense 2 (~6k parameters); for smoke tests',
  },
  small_cnn_bn: {
    blockChannels: [16, 32, 64, 128],
    batchNorm: true,
    description: 'small_cnn with batch normalisation after each conv (slower on wasm: BN gradients are generic ops)',
  },
  wide_cnn: {
    blockChannels: [32, 64, 128, 256],
    batchNorm: false,
    description: '4 blocks conv3×3(32/64/128/256)-ReLU-maxpool2, GAP, dense 2 (~390k parameters)',
  },
};

export function buildModel(arch: Arch, imageSize: number, seed: number, numClasses = 2): tf.Sequential {
  const spec = ARCH_SPECS[arch];
  const model = tf.sequential({ name: arch });
  let layerSeed = seed * 1000;
  spec.blockChannels.forEach((filters, i) => {
    model.add(
      tf.layers.conv2d({
        name: `conv${i + 1}`,
        filters,
        kernelSize: 3,
        padding: 'same',
        useBias: !spec.batchNorm,
        // ReLU inside the conv layer when there is no BN: in training tfjs then runs conv, bias-add and ReLU as plain
        // ops whose gradients are pruned to what is needed; the fused op's custom gradient always computes dX, even
        // for the first layer where nothing uses it (~7% of a step).
        activation: spec.batchNorm ? 'linear' : 'relu',
        kernelInitializer: tf.initializers.heNormal({ seed: ++layerSeed }),
        biasInitializer: 'zeros',
        ...(i === 0 ? { inputShape: [imageSize, imageSize, 1] } : {}),
      }),
    );
    if (spec.batchNorm) {
      model.add(tf.layers.batchNormalization({ name: `bn${i + 1}`, momentum: 0.9, epsilon: 1e-5 }));
      model.add(tf.layers.reLU({ name: `relu${i + 1}` }));
    }
    model.add(tf.layers.maxPooling2d({ name: `pool${i + 1}`, poolSize: 2, strides: 2 }));
  });
  model.add(tf.layers.globalAveragePooling2d({ name: 'gap' }));
  model.add(
    tf.layers.dense({
      name: 'logits',
      units: numClasses,
      kernelInitializer: tf.initializers.glorotUniform({ seed: ++layerSeed }),
      biasInitializer: 'zeros',
    }),
  );
  return model;
}
