/**
 * The single entry point that runs one `uses` stage inside its own process:
 *
 *     node dist/engine/runner.js <spec.json>
 *
 * Local children and SLURM batch jobs run exactly this argv, so it depends on nothing of the parent process: all it
 * needs is in the spec file. It imports the kind's run.js (only here: heavy modules load only for stages that run),
 * builds the StageContext, and reports through stdout lines `::pipe::<json>` (log, progress, record). record() data
 * also goes to `resultFile`, so an executor that cannot stream stdout (SLURM) still gets it.
 *
 * Exit codes: 0 done; 1 StageError (one paragraph on stderr); 70 a bug (stack on stderr); 130 cancelled (SIGTERM).
 */
import { mkdirSync, rmSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { writeFileAtomicSync } from '../cache/atomic.js';
import { ownFolderSync, ownFoldersIntact } from '../cache/dir.js';
import { readBoundedSync, unreadText } from '../cache/read.js';
import type { ProgressUpdate, Resources, StageContext, StageRun, UpstreamRun } from './stage-api.js';

export interface RunnerSpec {
  stage: string;
  kind: string;
  with: Record<string, unknown>;
  params: Record<string, unknown>;
  workspace: string;
  key: string;
  depHashes: Record<string, string>;
  upstream: UpstreamRun[];
  pipeline: { file: string; name: string; pipeVersion: string };
  resources: Resources & { gpuIds: string[] };
  /** Where record() and recordExecution() data is written as JSON `{ extra, execution }` when the stage succeeds. */
  resultFile: string;
  /** Scratch directory (created and removed by the runner). */
  tmpDir: string;
  /** Absolute path of the compiled kinds (`<stagesRoot>/<kind>/run.js`); default: dist/stages next to this file. */
  stagesRoot?: string;
  /**
   * The Node version and platform the stage's key was computed for. A runner on another (a SLURM node with another
   * Node) refuses to run: its outputs would be recorded under a key that names a runtime they did not come from.
   */
  toolchain?: { node: string; platform: string };
}

/** A spec lists a stage's deps, params and upstream results: one past this is not one pipe wrote. */
const MAX_SPEC_BYTES = 64 * 1024 * 1024;

/** The protocol line prefix shared with the engine (engine/run.ts parses it). */
export const PIPE_LINE = '::pipe::';

export type RunnerMessage =
  | { type: 'log'; message: string }
  | ({ type: 'progress' } & ProgressUpdate)
  | { type: 'record'; info: Record<string, unknown> }
  | { type: 'execution'; info: Record<string, unknown> };

function send(msg: RunnerMessage): void {
  process.stdout.write(`${PIPE_LINE}${JSON.stringify(msg)}\n`);
}

export async function main(specFile: string): Promise<number> {
  // The engine reads our stdout; if it went away (killed), writes fail quietly instead of crashing with a stack.
  process.stdout.on('error', () => {});
  process.stderr.on('error', () => {});
  // Bounded and non-blocking: a stage may have replaced the file pipe wrote (a FIFO would block this read forever).
  const read = readBoundedSync(specFile, MAX_SPEC_BYTES);
  let spec: RunnerSpec | undefined;
  try {
    if (read.ok) spec = JSON.parse(read.bytes.toString('utf8')) as RunnerSpec;
  } catch {
    // Not JSON: said below.
  }
  if (!spec) {
    process.stderr.write(`pipe: the stage's spec file ${specFile} is ${read.ok ? 'not JSON' : unreadText(read)}: not the one pipe wrote before starting this runner\n`);
    return 1;
  }
  const controller = new AbortController();
  process.on('SIGTERM', () => controller.abort(new Error('cancelled')));
  process.on('SIGINT', () => controller.abort(new Error('cancelled')));

  const runtime = `${process.version} ${process.platform}-${process.arch}`;
  if (spec.toolchain && runtime !== `${spec.toolchain.node} ${spec.toolchain.platform}`) {
    process.stderr.write(
      `stage ${spec.stage}: this runner is Node ${runtime} but the stage's key was computed for Node ${spec.toolchain.node} ${spec.toolchain.platform}; ` +
        'its outputs would be recorded under the wrong key. Run pipe with the same Node as the executor (on SLURM: load the same node module in the job).\n',
    );
    return 1;
  }
  const stagesRoot = spec.stagesRoot ?? fileURLToPath(new URL('../stages/', import.meta.url));
  const modPath = join(stagesRoot, ...spec.kind.split('/'), 'run.js');
  const extra: Record<string, unknown> = {};
  const execution: Record<string, unknown> = {};
  // Every attempt starts from an empty scratch folder. One killed with SIGKILL (a second Ctrl-C, an OOM kill, pipe
  // itself killed) never reached the `finally` below, and the same stage and key get the same folder: its files
  // would be there for the next run to find, which a fresh run never sees.
  // Both live in pipe's `.pipe/tmp`, which a stage running beside this one could move away and link elsewhere after
  // pipe checked it: then nothing is deleted, made or written through it (cache/dir.ts).
  const tmpIntact = (): boolean => ownFoldersIntact(dirname(dirname(spec.tmpDir)), basename(dirname(spec.tmpDir)));
  try {
    ownFolderSync(dirname(dirname(spec.tmpDir)), basename(dirname(spec.tmpDir)));
  } catch (e) {
    process.stderr.write(`stage ${spec.stage}: ${(e as Error).message}\n`);
    return 1;
  }
  rmSync(spec.tmpDir, { recursive: true, force: true });
  mkdirSync(spec.tmpDir, { recursive: true });
  // Locally the engine granted the GPUs; on SLURM the allocation did, and slurmd exported CUDA_VISIBLE_DEVICES.
  const visible = process.env.CUDA_VISIBLE_DEVICES;
  const gpuIds = spec.resources.gpuIds.length > 0 || spec.resources.gpus === 0 ? spec.resources.gpuIds : (visible ?? '').split(',').filter((g) => g !== '');
  if (spec.resources.gpus > 0) send({ type: 'log', message: `GPUs: CUDA_VISIBLE_DEVICES=${visible ?? '(not set)'}` });
  const ctx: StageContext = {
    stage: spec.stage,
    workspace: spec.workspace,
    with: spec.with,
    params: spec.params,
    key: spec.key,
    depHashes: spec.depHashes,
    upstream: spec.upstream,
    pipeline: spec.pipeline,
    resolve: (rel) => (isAbsolute(rel) ? rel : resolve(spec.workspace, rel)),
    tmpDir: spec.tmpDir,
    resources: { ...spec.resources, gpuIds },
    signal: controller.signal,
    log: (message) => send({ type: 'log', message: String(message) }),
    progress: (update) => send({ type: 'progress', ...update }),
    record: (info) => {
      Object.assign(extra, info);
      send({ type: 'record', info });
    },
    recordExecution: (info) => {
      Object.assign(execution, info);
      send({ type: 'execution', info });
    },
  };
  try {
    const mod = (await import(pathToFileURL(modPath).href)) as { run?: StageRun };
    if (typeof mod.run !== 'function') {
      process.stderr.write(`pipe: kind ${spec.kind} has no run() export in ${modPath}\n`);
      return 70;
    }
    await mod.run(ctx);
    if (controller.signal.aborted) {
      process.stderr.write('cancelled\n');
      return 130;
    }
    if (!tmpIntact()) {
      process.stderr.write(`stage ${spec.stage}: ${dirname(spec.resultFile)} was replaced while the stage ran (a stage's command moved it?); its result is not written through it\n`);
      return 1;
    }
    writeFileAtomicSync(spec.resultFile, JSON.stringify({ extra, execution }));
    return 0;
  } catch (e) {
    if (controller.signal.aborted) {
      process.stderr.write('cancelled\n');
      return 130;
    }
    if (e instanceof Error && e.name === 'StageError') {
      process.stderr.write(`${e.message}\n`);
      return 1;
    }
    // A file-system failure (a full disk, a permission) is the environment's, not a bug: one paragraph, no stack.
    if (e instanceof Error && typeof (e as NodeJS.ErrnoException).code === 'string' && typeof (e as NodeJS.ErrnoException).syscall === 'string') {
      process.stderr.write(`stage ${spec.stage}: ${e.message}\n`);
      return 1;
    }
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return 70;
  } finally {
    if (tmpIntact()) rmSync(spec.tmpDir, { recursive: true, force: true });
  }
}

// Run when executed as a script (not when imported for its types/constants).
if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const specFile = process.argv[2];
  if (!specFile) {
    process.stderr.write('usage: node runner.js <spec.json>\n');
    process.exit(2);
  }
  main(specFile).then(
    (code) => {
      // Let stdout drain before exiting.
      process.stdout.write('', () => process.exit(code));
    },
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(70);
    },
  );
}
