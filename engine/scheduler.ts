/**
 * When stages may start: a DAG readiness tracker and a resource pool (job slots, cpus, memory, GPU device ids).
 * Pure: no processes, no clock, no disk — the orchestration (engine/run.ts) drives it, tests feed it fake machines.
 */
import type { Resources } from './stage-api.js';

/** What this machine offers to local stages. */
export interface Machine {
  /** `-j`: at most this many local stages at once. */
  jobs: number;
  cpus: number;
  memBytes: number;
  /** GPU device ids (`--gpus 0,1` or detected by nvidia-smi). */
  gpuIds: string[];
}

export interface Grant {
  cpus: number;
  memBytes: number;
  gpuIds: string[];
}

export type Fit = { ok: true; request: Resources; warnings: string[] } | { ok: false; error: string };

/**
 * Make a stage's request fit the machine: cpus and memory beyond what the machine has are clamped (with a warning:
 * the stage would otherwise never start); GPUs cannot be invented, so asking for more than exist is an error.
 */
export function fitRequest(stage: string, req: Resources, machine: Machine): Fit {
  const warnings: string[] = [];
  let { cpus, memBytes } = req;
  if (cpus > machine.cpus) {
    warnings.push(`stage ${stage} asks for ${cpus} cpus but this machine has ${machine.cpus}; it gets ${machine.cpus}`);
    cpus = machine.cpus;
  }
  if (memBytes > machine.memBytes) {
    warnings.push(
      `stage ${stage} asks for ${formatBytes(memBytes)} of memory but only ${formatBytes(machine.memBytes)} is available; it gets that`,
    );
    memBytes = machine.memBytes;
  }
  if (req.gpus > machine.gpuIds.length) {
    const have = machine.gpuIds.length === 0 ? 'no GPUs were found (nvidia-smi missing or empty)' : `only ${machine.gpuIds.length} GPU(s) (${machine.gpuIds.join(',')}) are available`;
    return {
      ok: false,
      error: `stage ${stage} needs ${req.gpus} GPU(s) but ${have}. Declare devices with --gpus 0,1, or run the stage on SLURM (executor: slurm).`,
    };
  }
  return { ok: true, request: { ...req, cpus: Math.max(0, cpus), memBytes: Math.max(0, memBytes) }, warnings };
}

/** Job slots, cpus, memory and GPU devices of one machine. */
export class ResourcePool {
  private slots: number;
  private cpus: number;
  private mem: number;
  private readonly freeGpus: Set<string>;
  private readonly releaseListeners = new Set<() => void>();

  constructor(private readonly machine: Machine) {
    this.slots = machine.jobs;
    this.cpus = machine.cpus;
    this.mem = machine.memBytes;
    this.freeGpus = new Set(machine.gpuIds);
  }

  /** A grant when the request fits what is free now (requests must have gone through fitRequest). */
  tryAcquire(req: Resources): Grant | undefined {
    if (this.slots < 1 || req.cpus > this.cpus || req.memBytes > this.mem || req.gpus > this.freeGpus.size) return undefined;
    // Lowest free ids first, in the machine's order: deterministic, and devices fill up predictably.
    const gpuIds = this.machine.gpuIds.filter((id) => this.freeGpus.has(id)).slice(0, req.gpus);
    for (const id of gpuIds) this.freeGpus.delete(id);
    this.slots -= 1;
    this.cpus -= req.cpus;
    this.mem -= req.memBytes;
    return { cpus: req.cpus, memBytes: req.memBytes, gpuIds };
  }

  release(grant: Grant): void {
    this.slots += 1;
    this.cpus += grant.cpus;
    this.mem += grant.memBytes;
    for (const id of grant.gpuIds) this.freeGpus.add(id);
    for (const l of this.releaseListeners) l();
  }

  /**
   * Called after every release: several runs sharing one pool (`pipe exp run`'s variants) each start what now fits
   * of their own waiting stages. Returns the unsubscribe function.
   */
  onRelease(listener: () => void): () => void {
    this.releaseListeners.add(listener);
    return () => this.releaseListeners.delete(listener);
  }

  get hasSlot(): boolean {
    return this.slots > 0;
  }

  get idle(): boolean {
    return this.slots === this.machine.jobs;
  }
}

/**
 * Stages waiting for resources, in arrival order. `take` starts every waiting stage that fits (backfilling past
 * one that does not, so a big GPU stage does not idle the cpus).
 */
export class WaitQueue<T> {
  private readonly items: Array<{ item: T; req: Resources }> = [];
  push(item: T, req: Resources): void {
    this.items.push({ item, req });
  }
  take(pool: ResourcePool): Array<{ item: T; grant: Grant }> {
    const started: Array<{ item: T; grant: Grant }> = [];
    // No free job slot: nothing can start (and 10,000 waiting stages must not be scanned on every completion).
    for (let i = 0; i < this.items.length && pool.hasSlot; ) {
      const { item, req } = this.items[i]!;
      const grant = pool.tryAcquire(req);
      if (grant) {
        started.push({ item, grant });
        this.items.splice(i, 1);
      } else i++;
    }
    return started;
  }
  /** Drop everything waiting (cancellation, or a failure without --keep-going). */
  drain(): T[] {
    return this.items.splice(0).map((x) => x.item);
  }
  get size(): number {
    return this.items.length;
  }
}

/**
 * Which stages are ready: a stage is ready once every stage it waits for has completed (whatever the outcome; the
 * caller decides whether a failed upstream skips it).
 */
export class ReadyTracker {
  private readonly remaining = new Map<string, number>();
  private readonly dependents = new Map<string, string[]>();

  /** `waitsFor(s)`: the stages s must wait for (all within `stages`). */
  constructor(stages: readonly string[], waitsFor: (s: string) => Iterable<string>) {
    for (const s of stages) {
      let n = 0;
      for (const up of waitsFor(s)) {
        n++;
        let list = this.dependents.get(up);
        if (!list) this.dependents.set(up, (list = []));
        list.push(s);
      }
      this.remaining.set(s, n);
    }
  }

  /** Stages with nothing to wait for, in the given order. */
  initial(): string[] {
    return [...this.remaining].filter(([, n]) => n === 0).map(([s]) => s);
  }

  /** Mark `stage` complete; returns the stages that became ready. */
  complete(stage: string): string[] {
    const ready: string[] = [];
    for (const d of this.dependents.get(stage) ?? []) {
      const n = (this.remaining.get(d) ?? 0) - 1;
      this.remaining.set(d, n);
      if (n === 0) ready.push(d);
    }
    return ready;
  }
}

/** Parse `8G`, `512M`, `1.5GiB`, `1000` (bytes). */
export function parseBytes(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$/i.exec(text);
  if (!m) return undefined;
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase()] ?? 1;
  return Math.round(Number(m[1]) * mult);
}

export function formatBytes(n: number): string {
  const units = ['B', 'K', 'M', 'G', 'T'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(1)}${units[i]}`;
}
