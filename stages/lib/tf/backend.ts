/**
 * The tfjs backend of a stage, from its keyed `with.backend` setting (never from the environment: a setting that
 * changes numerics must be part of the stage key). `auto` picks the best usable one, in this order: tfjs-node-gpu
 * (CUDA), tfjs-node (libtensorflow, CPU), WebGPU (only where `navigator.gpu` exists and the backend package is
 * installed), wasm (XNNPACK + SIMD, with our fast gradient kernels), and the pure-JS cpu backend. Naming one that is
 * not usable is an error that names the usable ones. The native packages are optionalDependencies: npm skips them where
 * libtensorflow cannot be downloaded, so "not installed" is a normal outcome, not a failure. `auto` therefore depends
 * on the host; the backend actually used is logged and recorded in the run record, and a pipeline that must
 * reproduce bit for bit pins `backend: wasm` (or `cpu`).
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { StageError, type StageContext } from '../../../engine/stage-api.js';
import { BACKEND_SETTINGS, type BackendSetting } from './backend-field.js';
import { registerWasmConvGradients } from './wasm-kernels.js';

export { BACKEND_SETTINGS, type BackendSetting };
export type BackendName = Exclude<BackendSetting, 'auto'>;
/** `auto`'s order of preference. */
export const BACKEND_ORDER: readonly BackendName[] = ['node-gpu', 'node', 'webgpu', 'wasm', 'cpu'];

/** Backends whose kernels run in this JS thread (one core each): data-parallel worker threads spread them. */
export function runsOnOneThread(name: BackendName): boolean {
  return name === 'wasm' || name === 'cpu';
}

export interface BackendChoice {
  name: BackendName;
  /** tfjs's registry name of the active backend (`tensorflow`, `webgpu`, `wasm`, `cpu`). */
  tfName: string;
  /** One line for the log: what runs and why the better ones did not. */
  detail: string;
}

export class BackendUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackendUnavailableError';
  }
}

const require = createRequire(import.meta.url);

function resolvable(pkg: string): boolean {
  try {
    require.resolve(`${pkg}/package.json`);
    return true;
  } catch {
    return false;
  }
}

/** Why a backend cannot be used here, or undefined when it can be tried. Cheap: resolves packages, loads nothing. */
export function unavailableReason(name: BackendName): string | undefined {
  switch (name) {
    case 'node-gpu':
      return resolvable('@tensorflow/tfjs-node-gpu') ? undefined : '@tensorflow/tfjs-node-gpu is not installed';
    case 'node':
      return resolvable('@tensorflow/tfjs-node') ? undefined : '@tensorflow/tfjs-node is not installed';
    case 'webgpu': {
      const nav = (globalThis as { navigator?: { gpu?: unknown } }).navigator;
      if (nav?.gpu === undefined) return 'navigator.gpu is not present in this runtime';
      return resolvable('@tensorflow/tfjs-backend-webgpu') ? undefined : '@tensorflow/tfjs-backend-webgpu is not installed';
    }
    case 'wasm':
      return resolvable('@tensorflow/tfjs-backend-wasm') ? undefined : '@tensorflow/tfjs-backend-wasm is not installed';
    case 'cpu':
      return undefined;
  }
}

/** Loads and activates one backend; throws with the cause when it cannot start. */
async function activate(name: BackendName): Promise<string> {
  const load = async (pkg: string): Promise<void> => {
    await import(pkg);
  };
  switch (name) {
    case 'node-gpu':
      await load('@tensorflow/tfjs-node-gpu');
      break;
    case 'node':
      await load('@tensorflow/tfjs-node');
      break;
    case 'webgpu':
      await load('@tensorflow/tfjs-backend-webgpu');
      break;
    case 'wasm': {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      // Node has no page URL to resolve the .wasm binaries against: point at the installed package's dist/.
      wasm.setWasmPaths(join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + '/');
      registerWasmConvGradients();
      break;
    }
    case 'cpu':
      // The cpu backend greets Node users with a banner on first use; PROD silences it (and nothing else we need).
      tf.env().set('PROD', true);
      break;
  }
  const tfName = name === 'node' || name === 'node-gpu' ? 'tensorflow' : name;
  if (!(await tf.setBackend(tfName))) throw new Error(`tf.setBackend('${tfName}') returned false`);
  await tf.ready();
  return tfName;
}

function errorText(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]!;
}

/** Names of the backends that are not ruled out without loading them. */
export function candidateBackends(): BackendName[] {
  return BACKEND_ORDER.filter((n) => unavailableReason(n) === undefined);
}

/**
 * Activates the backend `setting` names, or with `auto` the best usable one. tfjs has one engine per thread, so this
 * is idempotent within a thread only for the same choice.
 */
export async function selectBackend(setting: BackendSetting = 'auto'): Promise<BackendChoice> {
  if (setting !== 'auto') {
    const name = setting;
    const usable = candidateBackends().join(', ');
    if (!(BACKEND_ORDER as readonly string[]).includes(name)) {
      throw new BackendUnavailableError(
        `backend "${String(setting)}" is not a tfjs backend pipe knows; use one of ${BACKEND_SETTINGS.join(', ')} (usable here: ${usable}).`,
      );
    }
    const reason = unavailableReason(name);
    if (reason !== undefined) throw new BackendUnavailableError(`backend ${name} is not usable here: ${reason}; usable here: ${usable}.`);
    try {
      const tfName = await activate(name);
      return { name, tfName, detail: `${describe(name)} (with.backend: ${name})` };
    } catch (e) {
      throw new BackendUnavailableError(`backend ${name} failed to start: ${errorText(e)}; usable here: ${usable}.`);
    }
  }
  const skipped: string[] = [];
  for (const name of BACKEND_ORDER) {
    const reason = unavailableReason(name);
    if (reason !== undefined) {
      skipped.push(`${name}: ${reason}`);
      continue;
    }
    try {
      const tfName = await activate(name);
      const why = skipped.length > 0 ? `; not used: ${skipped.join('; ')}` : '';
      return { name, tfName, detail: `${describe(name)} (with.backend: auto${why})` };
    } catch (e) {
      skipped.push(`${name}: failed to start (${errorText(e)})`);
    }
  }
  throw new BackendUnavailableError(`no tfjs backend could start: ${skipped.join('; ')}`);
}

function describe(name: BackendName): string {
  if (name === 'wasm') {
    const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
    const threads = tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT');
    return `tfjs backend wasm (SIMD ${simd ? 'on' : 'off'}, threads ${threads ? 'on' : 'off'}, fast conv gradients)`;
  }
  return `tfjs backend ${name}`;
}

/**
 * What a stage does before touching tfjs: activate the backend its `with.backend` names (`auto`: the best present),
 * turn "not usable" into a StageError naming the field, and say which one runs — in the log and in the run record
 * (`backend`, `tfjs`; the report's provenance prints them).
 */
export async function useBackend(
  ctx: Pick<StageContext, 'stage' | 'log' | 'record'>,
  setting: BackendSetting,
): Promise<BackendChoice> {
  let backend: BackendChoice;
  try {
    backend = await selectBackend(setting);
  } catch (e) {
    if (e instanceof BackendUnavailableError) throw new StageError(`stage ${ctx.stage}: with.backend: ${e.message}`);
    throw e;
  }
  ctx.log(backend.detail);
  ctx.record({ backend: backend.name, tfjs: tf.version_core });
  return backend;
}
