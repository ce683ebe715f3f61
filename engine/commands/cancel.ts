/**
 * `pipe cancel FILE`: scancel every SLURM job this workspace submitted (the registry in `.pipe/slurm/jobs/`), e.g.
 * after the `pipe run` that submitted them was killed and will not be restarted.
 */
import { join } from 'node:path';
import { loadAll } from './load.js';
import { pipeDirOf } from '../workspace.js';
import { ExitError } from './errors.js';

export async function cancelCommand(file: string, opts: { json?: boolean }): Promise<number> {
  const { pipeline } = await loadAll(file);
  const { cancelWorkspaceJobs } = await import('../executors/slurm.js');
  let cancelled;
  try {
    cancelled = await cancelWorkspaceJobs(join(pipeDirOf(pipeline), 'slurm'));
  } catch (e) {
    throw new ExitError(`pipe cancel: ${(e as Error).message}`, 1);
  }
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ type: 'cancelled', jobs: cancelled.map((j) => ({ stage: j.stage, jobId: j.jobId })) })}\n`);
  } else if (cancelled.length === 0) {
    process.stdout.write('No SLURM jobs of this workspace are pending or running.\n');
  } else {
    for (const j of cancelled) process.stdout.write(`cancelled SLURM job ${j.jobId} (${j.stage})\n`);
  }
  return 0;
}
