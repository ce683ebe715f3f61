import { readFile, writeFile } from 'node:fs/promises';
import { StageError, type StageContext } from '../../../engine/stage-api.js';

interface EchoWith {
  src: string;
  out: string;
  message: string;
  steps: number;
  fail: 'none' | 'stage-error' | 'crash' | 'partial';
}

/** Test-only kind (see manifest.ts). */
export async function run(ctx: StageContext<EchoWith>): Promise<void> {
  const w = ctx.with;
  for (let i = 1; i <= w.steps; i++) ctx.progress({ done: i, total: w.steps, unit: 'steps' });
  ctx.log(`copying ${w.src} to ${w.out}`);
  ctx.record({ echoed: w.message, upstream: ctx.upstream.map((u) => u.stage), gpus: ctx.resources.gpuIds });
  ctx.recordExecution({ pid: process.pid });
  const text = await readFile(ctx.resolve(w.src), 'utf8');
  if (w.fail === 'stage-error') throw new StageError(`echo was told to fail: ${w.src} is fine, but this is a test of StageError.`);
  if (w.fail === 'crash') throw new TypeError('echo crashed on purpose');
  if (w.fail === 'partial') {
    await writeFile(ctx.resolve(w.out), text.slice(0, 1));
    throw new StageError('echo stopped after writing part of its output');
  }
  // The provenance a report would print (stage, outputs with hashes, extra): a test sees what downstream bytes depend on.
  const upstream = ctx.upstream.map((u) => ({ stage: u.stage, outputs: u.outputs, ...(u.extra ? { extra: u.extra } : {}) }));
  await writeFile(ctx.resolve(w.out), `${text}${w.message}\n${JSON.stringify({ key: ctx.key, deps: ctx.depHashes, upstream })}\n`);
}
