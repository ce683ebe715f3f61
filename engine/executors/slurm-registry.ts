/**
 * Submitted SLURM jobs, persisted in the workspace (`.pipe/slurm/jobs/<stage key>.json`) the moment sbatch answers.
 * A `pipe run` that is killed and started again finds its jobs here and reattaches instead of submitting twice;
 * `pipe cancel` reads it to scancel this workspace's jobs.
 */
import { readdir, rm } from 'node:fs/promises';
import { writeFileAtomic } from '../../cache/atomic.js';
import { readRegularFile } from '../../cache/read.js';
import { join } from 'node:path';

/** A submitted job's record is a few paths and ids; anything past this (or a FIFO put there) is not one. */
const MAX_SUBMITTED_BYTES = 64 * 1024;

export interface SubmittedJob {
  key: string;
  stage: string;
  /** "123" or "123_4" (array task). */
  jobId: string;
  /** The task script's exit-status marker file. */
  marker: string;
  /** SLURM's own output file for the task (slurmstepd messages: OOM, time limit, cancellation). */
  slurmOutput: string;
  logFile: string;
  submittedAt: string;
  memLimit?: string;
}

export class SlurmRegistry {
  constructor(private readonly dir: string) {}

  /** The registry of a SLURM state folder (`.pipe/slurm`): its `jobs/`. */
  static of(stateDir: string): SlurmRegistry {
    return new SlurmRegistry(join(stateDir, 'jobs'));
  }

  /** Does it hold any record? One listing, nothing parsed (asked on every run: are jobs of a killed run left?). */
  async any(): Promise<boolean> {
    return (await this.names()).length > 0;
  }

  private file(key: string): string {
    return join(this.dir, `${key}.json`);
  }

  async get(key: string): Promise<SubmittedJob | undefined> {
    try {
      return JSON.parse((await readRegularFile(this.file(key), MAX_SUBMITTED_BYTES)) ?? '') as SubmittedJob;
    } catch {
      return undefined;
    }
  }

  /** Atomic: a crash mid-write never leaves a torn record. */
  async put(job: SubmittedJob): Promise<void> {
    await writeFileAtomic(this.file(job.key), JSON.stringify(job, null, 2));
  }

  async remove(key: string): Promise<void> {
    await rm(this.file(key), { force: true });
  }

  async all(): Promise<SubmittedJob[]> {
    const jobs: SubmittedJob[] = [];
    for (const n of await this.names()) {
      const j = await this.get(n.slice(0, -5));
      if (j) jobs.push(j);
    }
    return jobs;
  }

  /** The records' file names (`<key>.json`); none when the folder is not there. */
  private async names(): Promise<string[]> {
    try {
      return (await readdir(this.dir)).filter((n) => n.endsWith('.json'));
    } catch {
      return [];
    }
  }
}
