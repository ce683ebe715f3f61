/**
 * Equal parts of expanded stages made one object. The stages of a matrix differ in their name, item, command and
 * out paths; their resources, SLURM options, retries, params, env and dep entries are mostly equal, and 100,000
 * copies of those are memory for nothing (and time for the garbage collector). Everything interned here is shared
 * between StageSpecs: consumers treat a StageSpec as read-only (nothing in the engine writes into one).
 */
import type { DepSpec, RetryPolicy, SlurmOptions, SourceSpan } from '../model.js';
import type { Resources } from '../stage-api.js';

export class Interner {
  private readonly byJson = new Map<string, unknown>();
  private readonly deps = new Map<SourceSpan | undefined, Map<string, DepSpec>>();
  private readonly defaultResources = new Map<Partial<Resources> | undefined, Resources>();
  private readonly defaultRetries: RetryPolicy = { count: 0 };

  /** `value` itself the first time, the first equal value (same JSON) afterwards. */
  json<T>(kind: string, value: T): T {
    const key = `${kind}\0${JSON.stringify(value)}`;
    const known = this.byJson.get(key);
    if (known !== undefined) return known as T;
    this.byJson.set(key, value);
    return value;
  }

  /** The final resources: the kind's defaults under the stage's own (shared per kind when the stage sets none). */
  resources(kindDefaults: Partial<Resources> | undefined, own: Partial<Resources>): Resources {
    if (isEmpty(own)) {
      let r = this.defaultResources.get(kindDefaults);
      if (!r) this.defaultResources.set(kindDefaults, (r = { cpus: 1, memBytes: 0, gpus: 0, ...(kindDefaults ?? {}) }));
      return r;
    }
    return this.json('resources', { cpus: 1, memBytes: 0, gpus: 0, ...(kindDefaults ?? {}), ...own });
  }

  slurm(settings: SlurmOptions, own: SlurmOptions): SlurmOptions {
    return isEmpty(own) ? settings : this.json('slurm', { ...settings, ...own });
  }

  retries(r: RetryPolicy): RetryPolicy {
    if (r.count === 0 && r.memFactor === undefined && r.timeFactor === undefined) return this.defaultRetries;
    return this.json('retries', r);
  }

  /** A map of values (params, env): empty ones are already shared; equal ones become one. */
  record<T extends Record<string, unknown>>(kind: string, r: T): T {
    return isEmpty(r) ? r : this.json(kind, r);
  }

  /** The deps list with each entry shared by every stage that declares the same path at the same place. */
  depList(deps: DepSpec[]): DepSpec[] {
    for (let i = 0; i < deps.length; i++) {
      const d = deps[i]!;
      let bySpan = this.deps.get(d.span);
      if (!bySpan) this.deps.set(d.span, (bySpan = new Map()));
      const known = bySpan.get(d.path);
      if (known) deps[i] = known;
      else bySpan.set(d.path, d);
    }
    return deps;
  }
}

function isEmpty(o: object): boolean {
  for (const _ in o) return false;
  return true;
}
