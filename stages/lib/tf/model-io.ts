/**
 * Saving and loading tfjs LayersModels as files (model.json + weights.bin, the layout tfjs-node's `file://` handler
 * writes) WITHOUT tfjs-node: it is an optional native package and absent on many machines, so the artifacts are
 * serialised here through custom IOHandlers. Files are written to a temp name and renamed, so a crash never leaves a
 * half-written model.
 */
import { mkdir } from 'node:fs/promises';
import { readStageInput } from '../../../engine/stage-api.js';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { writeFileAtomic } from '../atomic-write.js';

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';

/** What we store next to the topology so inference needs nothing but the model directory. */
export interface ModelMetadata {
  arch: string;
  imageSize: number;
  /** Normalisation applied to pixels/255 before the network: (v − mean) / std (the training set's statistics). */
  mean: number;
  std: number;
  labelColumn: string;
  classes: string[];
  epoch?: number;
  valLoss?: number;
  backend?: string;
}

export async function saveModel(model: tf.LayersModel, dir: string, metadata: ModelMetadata): Promise<void> {
  await mkdir(dir, { recursive: true });
  model.setUserDefinedMetadata(metadata as unknown as Record<string, unknown>);
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weights = artifacts.weightData === undefined ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(artifacts.weightData);
      const json = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: [{ paths: [`./${WEIGHTS_BIN}`], weights: artifacts.weightSpecs ?? [] }],
        userDefinedMetadata: artifacts.userDefinedMetadata,
      };
      await writeFileAtomic(join(dir, WEIGHTS_BIN), new Uint8Array(weights));
      await writeFileAtomic(join(dir, MODEL_JSON), JSON.stringify(json));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
}

export class ModelLoadError extends Error {}

/** Loads model.json + its weight files from `dir`; errors name the file. */
export async function loadModel(dir: string): Promise<{ model: tf.LayersModel; metadata: ModelMetadata }> {
  const jsonPath = join(dir, MODEL_JSON);
  let json: tf.io.ModelJSON;
  try {
    json = JSON.parse((await readStageInput(jsonPath, 'the model')).toString('utf8')) as tf.io.ModelJSON;
  } catch (e) {
    throw new ModelLoadError(`cannot read the model ${jsonPath}: ${(e as Error).message}`);
  }
  if (json.modelTopology === undefined || !Array.isArray(json.weightsManifest)) {
    throw new ModelLoadError(`${jsonPath} is not a tfjs layers model (no modelTopology/weightsManifest)`);
  }
  const handler: tf.io.IOHandler = {
    load: () =>
      tf.io.getModelArtifactsForJSON(json, async (manifest) => {
        const specs = manifest.flatMap((g) => g.weights);
        const buffers: ArrayBuffer[] = [];
        for (const group of manifest) {
          for (const p of group.paths) {
            const file = join(dir, p);
            try {
              const b = await readStageInput(file, 'the model weights');
              buffers.push(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
            } catch (e) {
              throw new ModelLoadError(`cannot read weights ${file} listed in ${jsonPath}: ${(e as Error).message}`);
            }
          }
        }
        return [specs, tf.io.CompositeArrayBuffer.join(buffers)];
      }),
  };
  const model = await tf.loadLayersModel(handler);
  const metadata = (json.userDefinedMetadata ?? {}) as unknown as ModelMetadata;
  if (typeof metadata.mean !== 'number' || typeof metadata.std !== 'number' || typeof metadata.imageSize !== 'number') {
    throw new ModelLoadError(`${jsonPath} lacks pipe's metadata (mean, std, imageSize): was it written by train/classifier?`);
  }
  return { model, metadata };
}
