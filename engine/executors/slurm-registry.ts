/**
 * Submitted SLURM jobs, persisted in the workspace (`.pipe/slurm/jobs/<stage key>.json`) the moment sbatch answers.
 * A `pipe run` that is killed and started again finds its jobs here and reattaches instead of submitting twice;
 * `pipe cancel` reads it to scancel this workspace's jobs.
 */
import { rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { writeFileAtomic } from '../../cache/atomic.js';
import { listDir, ownFolderSync, ownFoldersIntact } from '../../cache/dir.js';
import { readRegularFile } from '../../cache/read.js';

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
  /**
   * The folders from `.pipe` down to `jobs`: pipe's own, so never followed when one is a link. A running job's command
   * can write into the workspace, and a link it put at `.pipe/slurm` or `jobs` would have pipe write, read and delete
   * records wherever it points (cache/dir.ts).
   */
  private readonly own: [base: string, ...parts: string[]];

  private constructor(stateDir: string) {
    this.own = [dirname(stateDir), basename(stateDir), 'jobs'];
  }

  /** The registry of a SLURM state folder (`.pipe/slurm`): its `jobs/`. */
  static of(stateDir: string): SlurmRegistry {
    return new SlurmRegistry(stateDir);
  }

  private get dir(): string {
    return this.own.join('/');
  }

  /** Does it hold any record? One listing, nothing parsed (asked on every run: are jobs of a killed run left?). */
  async any(): Promise<boolean> {
    return (await this.names()).length > 0;
  }

  private file(key: string): string {
    return join(this.dir, `${key}.json`);
  }

  /**
   * The record in `<key>.json`, when it is one pipe writes: its own key (the name it is kept under) and the fields of
   * a SubmittedJob. A record is a file any job's command can rewrite: one naming another key (`../../x`) had
   * `pipe cancel` delete `<that key>.json` wherever it led, outside the workspace too.
   */
  async get(key: string): Promise<SubmittedJob | undefined> {
    if (!ownFoldersIntact(...this.own)) return undefined;
    try {
      const job = JSON.parse((await readRegularFile(this.file(key), MAX_SUBMITTED_BYTES)) ?? '') as unknown;
      return isSubmittedJob(job) && job.key === key ? job : undefined;
    } catch {
      return undefined;
    }
  }

  /** Atomic: a crash mid-write never leaves a torn record. */
  async put(job: SubmittedJob): Promise<void> {
    ownFolderSync(...this.own); // a link at one of them: refused with a CacheError naming it
    await writeFileAtomic(this.file(job.key), JSON.stringify(job, null, 2));
  }

  async remove(key: string): Promise<void> {
    if (ownFoldersIntact(...this.own)) await rm(this.file(key), { force: true });
  }

  async all(): Promise<SubmittedJob[]> {
    const jobs: SubmittedJob[] = [];
    for (const n of await this.names()) {
      const j = await this.get(n.slice(0, -5));
      if (j) jobs.push(j);
    }
    return jobs;
  }

  /** The records' file names (`<key>.json`); none when the folder is not there, or one on the way is a link. */
  private async names(): Promise<string[]> {
    if (!ownFoldersIntact(...this.own)) return [];
    try {
      return (await listDir(this.dir)).filter((n) => n.endsWith('.json'));
    } catch {
      return [];
    }
  }
}

function isSubmittedJob(v: unknown): v is SubmittedJob {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const j = v as Record<string, unknown>;
  const text = (k: string) => typeof j[k] === 'string';
  return ['key', 'stage', 'jobId', 'marker', 'slurmOutput', 'logFile', 'submittedAt'].every(text) && (j.memLimit === undefined || text('memLimit'));
}
