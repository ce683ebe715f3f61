/**
 * The DAG of a pipeline: an edge A → B when an out of A feeds a dep of B. Matching is prefix-aware: a directory out
 * `a/` feeds a dep `a/b.csv`, and a file out `a/b.csv` feeds a dep on the directory `a/`. Out paths are indexed
 * (a Map for exact and ancestor hits, a sorted list for "outs under this directory"), so building is
 * O(deps × path depth + edges × log outs), never outs × deps.
 */
import { outPathKey } from '../cache/paths.js';
import { createRequire } from 'node:module';
import type { Graph } from '@dagrejs/graphlib';
import type { Pipeline, SourceSpan, StageSpec } from './model.js';
import { err, ok, type Result } from './result.js';
import { didYouMean, type Diagnostic } from './dsl/diagnostics.js';
import { globToRegExp } from './glob.js';

/** graphlib, loaded when a graph is first materialised (or a cycle explained): not on every start-up. */
let graphlib: typeof import('@dagrejs/graphlib') | undefined;
const lib = () => (graphlib ??= createRequire(import.meta.url)('@dagrejs/graphlib') as typeof import('@dagrejs/graphlib'));

export interface Dag {
  /** Nodes are stage names (label: the StageSpec); edge labels are the dep paths that made the edge. */
  graph: Graph;
  /** Stage names in a topological order (declaration order where free). */
  order: string[];
  /** Out path (normalised, a directory with its trailing `/`) → the stage that writes it. */
  producers: Map<string, string>;
}

const bare = outPathKey;

/** Where every out lives, for prefix-aware lookups. */
export class OutIndex {
  /** Out path without trailing `/` → writer. */
  private readonly exact = new Map<string, { stage: string; path: string }>();
  /** `path/` keys of every out, sorted, with their writers (for "outs inside directory d"). */
  private readonly sortedKeys: string[];
  private readonly sortedOwners: Array<{ stage: string; path: string }>;

  constructor(outs: Iterable<{ stage: string; path: string }>) {
    const all: Array<{ key: string; owner: { stage: string; path: string } }> = [];
    for (const o of outs) {
      const k = bare(o.path);
      if (!this.exact.has(k)) this.exact.set(k, o);
      all.push({ key: `${k}/`, owner: o });
    }
    all.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    this.sortedKeys = all.map((a) => a.key);
    this.sortedOwners = all.map((a) => a.owner);
  }

  /** How many outs are indexed. */
  get size(): number {
    return this.sortedOwners.length;
  }

  /** Every indexed out path. */
  paths(): string[] {
    return this.sortedOwners.map((o) => o.path);
  }

  /** The outs that feed `dep`: the same path, an enclosing directory out, or outs inside the directory `dep`. */
  producersOf(dep: string): Array<{ stage: string; path: string }> {
    const b = bare(dep);
    const found: Array<{ stage: string; path: string }> = [];
    const same = this.exact.get(b);
    if (same) found.push(same);
    // Enclosing directories: a/b/c → a/b, a.
    for (let i = b.lastIndexOf('/'); i > 0; i = b.lastIndexOf('/', i - 1)) {
      // An out enclosing the dep is a directory whether it was written `dir` or `dir/`.
      const o = this.exact.get(b.slice(0, i));
      if (o) found.push(o);
    }
    // Outs strictly inside: keys starting with `b/` (other than `b/` itself).
    const prefix = `${b}/`;
    for (let i = lowerBound(this.sortedKeys, prefix); i < this.sortedKeys.length && this.sortedKeys[i]!.startsWith(prefix); i++) {
      if (this.sortedKeys[i] !== prefix) found.push(this.sortedOwners[i]!);
    }
    return found;
  }

  /** Pairs of outs where one equals or lies inside another (each pair once). Linear in outs plus conflicts. */
  conflicts(): Array<[{ stage: string; path: string }, { stage: string; path: string }]> {
    const pairs: Array<[{ stage: string; path: string }, { stage: string; path: string }]> = [];
    for (let i = 0; i < this.sortedKeys.length; i++) {
      const k = this.sortedKeys[i]!;
      for (let j = i + 1; j < this.sortedKeys.length && this.sortedKeys[j]!.startsWith(k); j++) {
        pairs.push([this.sortedOwners[i]!, this.sortedOwners[j]!]);
      }
    }
    return pairs;
  }
}

function lowerBound(a: string[], x: string): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Adjacency kept next to each Dag: the algorithms here use it instead of graphlib (cheaper at 10,000 stages). */
interface Adjacency {
  preds: Map<string, string[]>;
  succs: Map<string, string[]>;
  index: Map<string, number>;
}

/** Dags already built for a pipeline (loadPipeline builds one while validating; the engine reuses it). */
const built = new WeakMap<Pipeline, Dag>();
const outIndexes = new WeakMap<Pipeline, OutIndex>();
const NONE: string[] = Object.freeze([]) as unknown as string[];

/** The index of a pipeline's outs (built once; validation and buildDag share it). */
export function outIndexOf(p: Pipeline): OutIndex {
  let idx = outIndexes.get(p);
  if (!idx) {
    const outs: Array<{ stage: string; path: string }> = [];
    for (const s of p.stages) for (const o of s.outs) outs.push({ stage: s.name, path: o.path });
    idx = new OutIndex(outs);
    outIndexes.set(p, idx);
  }
  return idx;
}
const adjacency = new WeakMap<Dag, Adjacency>();

/**
 * Build the DAG. The graphlib `graph` is materialised on first access (node labels: the StageSpecs; edge labels:
 * the dep paths that made the edge); order, producers, cycle detection and the selections below need no graphlib.
 */
export function buildDag(p: Pipeline): Result<Dag, Diagnostic[]> {
  const cached = built.get(p);
  if (cached) return ok(cached);
  const producers = new Map<string, string>();
  // Adjacency lists are created on a stage's first edge (most stages of a wide foreach have none on one side).
  const preds = new Map<string, string[]>();
  const succs = new Map<string, string[]>();
  for (const s of p.stages) for (const o of s.outs) if (!producers.has(o.path)) producers.set(o.path, s.name);
  const index = outIndexOf(p);
  /** Edge labels by `from\0to`. */
  const labels = new Map<string, string[]>();
  for (const s of p.stages) {
    let into: string[] | undefined;
    for (const d of s.deps) {
      for (const prod of index.producersOf(d.path)) {
        if (prod.stage === s.name) continue; // a stage reading inside its own out: not an edge (validation reports exact overlaps)
        const key = `${prod.stage}\0${s.name}`;
        const l = labels.get(key);
        if (l) {
          if (!l.includes(d.path)) l.push(d.path);
          continue;
        }
        labels.set(key, [d.path]);
        if (!into) preds.set(s.name, (into = []));
        into.push(prod.stage);
        const out = succs.get(prod.stage);
        if (out) out.push(s.name);
        else succs.set(prod.stage, [s.name]);
      }
    }
  }
  const makeGraph = (): Graph => {
    const g: Graph = new (lib().Graph)({ directed: true });
    for (const s of p.stages) g.setNode(s.name, s);
    for (const [key, l] of labels) {
      const z = key.indexOf('\0');
      g.setEdge(key.slice(0, z), key.slice(z + 1), l);
    }
    return g;
  };
  const order = topoOrder(preds, succs, p.stages);
  if (order.length < p.stages.length) return err(cycleDiagnostics(makeGraph(), p.stages, new Set(order)));
  let graph: Graph | undefined;
  const dag: Dag = {
    get graph() {
      return (graph ??= makeGraph());
    },
    order,
    producers,
  };
  adjacency.set(dag, { preds, succs, index: new Map(order.map((n, i) => [n, i])) });
  built.set(p, dag);
  return ok(dag);
}

/** Kahn's algorithm; free choices follow declaration order. Nodes on cycles are left out. */
function topoOrder(preds: Map<string, string[]>, succs: Map<string, string[]>, stages: StageSpec[]): string[] {
  const indeg = new Map<string, number>();
  const queue: string[] = [];
  for (const s of stages) {
    const n = preds.get(s.name)?.length ?? 0;
    indeg.set(s.name, n);
    if (n === 0) queue.push(s.name);
  }
  for (let i = 0; i < queue.length; i++) {
    for (const w of succs.get(queue[i]!) ?? NONE) {
      const n = indeg.get(w)! - 1;
      indeg.set(w, n);
      if (n === 0) queue.push(w);
    }
  }
  return queue;
}

/** One diagnostic per strongly connected component, printing its shortest cycle `a → b → a`. */
function cycleDiagnostics(g: Graph, stages: StageSpec[], acyclic: Set<string>): Diagnostic[] {
  const declIndex = new Map(stages.map((s, i) => [s.name, i]));
  const byName = new Map(stages.map((s) => [s.name, s]));
  const out: Diagnostic[] = [];
  for (const comp of lib().alg.tarjan(g)) {
    if (comp.length < 2 || comp.some((n) => acyclic.has(n))) continue;
    const members = new Set(comp);
    const start = [...comp].sort((a, b) => declIndex.get(a)! - declIndex.get(b)!)[0]!;
    const path = shortestCycle(g, start, members);
    const links: string[] = [];
    for (let i = 0; i + 1 < path.length; i++) {
      const via = (g.edge(path[i]!, path[i + 1]!) as string[] | undefined) ?? [];
      links.push(`\`${path[i + 1]}\` reads \`${via[0]}\` written by \`${path[i]}\``);
    }
    const first = byName.get(start)!;
    const closing = byName.get(path[1]!);
    // Point at the dep that closes the loop into the first stage's successor, else at the stage.
    const dep = closing?.deps.find((d) => ((g.edge(start, closing.name) as string[] | undefined) ?? []).includes(d.path));
    const span: SourceSpan = dep?.span ?? first.span;
    out.push({
      severity: 'error',
      message: `dependency cycle: ${path.map((n) => `\`${n}\``).join(' → ')} (${links.join('; ')})`,
      span,
      stage: start,
      field: 'deps',
    });
  }
  return out;
}

function shortestCycle(g: Graph, start: string, members: Set<string>): string[] {
  const prev = new Map<string, string>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const v = queue[i]!;
    for (const w of g.successors(v) ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let x: string | undefined = v; x !== undefined && x !== start; x = prev.get(x)) path.push(x);
        path.push(start);
        // path is start, v, ..., start reversed in the middle
        const middle = path.slice(1, -1).reverse();
        return [start, ...middle, start];
      }
      if (!prev.has(w) && w !== start) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

/** The adjacency of a Dag built here, or one derived from its graph (a Dag assembled elsewhere). */
function adjOf(dag: Dag): Adjacency {
  let a = adjacency.get(dag);
  if (!a) {
    const g = dag.graph;
    const preds = new Map<string, string[]>();
    const succs = new Map<string, string[]>();
    for (const n of g.nodes()) {
      preds.set(n, (g.predecessors(n) as string[] | undefined) ?? []);
      succs.set(n, (g.successors(n) as string[] | undefined) ?? []);
    }
    a = { preds, succs, index: new Map(dag.order.map((n, i) => [n, i])) };
    adjacency.set(dag, a);
  }
  return a;
}

function closure(from: Iterable<string>, next: Map<string, string[]>): Set<string> {
  const seen = new Set<string>();
  const stack = [...from];
  while (stack.length) {
    const v = stack.pop()!;
    for (const w of next.get(v) ?? []) {
      if (!seen.has(w)) {
        seen.add(w);
        stack.push(w);
      }
    }
  }
  return seen;
}

function sortTopo(dag: Dag, names: Iterable<string>): string[] {
  const idx = adjOf(dag).index;
  return [...names].sort((a, b) => (idx.get(a) ?? 0) - (idx.get(b) ?? 0));
}

/** Direct predecessors (the stages whose outs `stage` reads), without materialising the graphlib graph. */
export function predecessorsOf(dag: Dag, stage: string): string[] {
  return adjOf(dag).preds.get(stage) ?? NONE;
}

/** Direct successors (the stages that read `stage`'s outs), without materialising the graphlib graph. */
export function successorsOf(dag: Dag, stage: string): string[] {
  return adjOf(dag).succs.get(stage) ?? NONE;
}

/** Every stage `stage` transitively depends on, in topological order (not `stage` itself). */
export function upstreamOf(dag: Dag, stage: string): string[] {
  return sortTopo(dag, closure([stage], adjOf(dag).preds));
}

/** Every stage that transitively depends on `stage`, in topological order (not `stage` itself). */
export function downstreamOf(dag: Dag, stage: string): string[] {
  return sortTopo(dag, closure([stage], adjOf(dag).succs));
}


/**
 * Resolve targets (stage names, declaration names like `train` for all of `train@*`, or globs like `train@*`,
 * `*@model=padchest*`) to the stages to run: the targets plus everything upstream, or with `downstream`, the
 * targets plus everything downstream. An empty target list selects every stage.
 */
export function selectTargets(
  dag: Dag,
  p: Pipeline,
  targets: string[],
  opts: { downstream?: boolean } = {},
): Result<Set<string>, Diagnostic[]> {
  if (targets.length === 0) return ok(new Set(p.stages.map((s) => s.name)));
  const byName = new Set(p.stages.map((s) => s.name));
  const byDecl = new Map<string, string[]>();
  for (const s of p.stages) {
    const l = byDecl.get(s.declaredAs);
    if (l) l.push(s.name);
    else byDecl.set(s.declaredAs, [s.name]);
  }
  const picked = new Set<string>();
  const errors: Diagnostic[] = [];
  for (const t of targets) {
    if (byName.has(t)) {
      picked.add(t);
      continue;
    }
    const decl = byDecl.get(t);
    if (decl) {
      for (const n of decl) picked.add(n);
      continue;
    }
    if (/[*?[]/.test(t)) {
      const re = globToRegExp(t);
      let any = false;
      for (const s of p.stages) {
        if (re.test(s.name) || re.test(s.declaredAs)) {
          picked.add(s.name);
          any = true;
        }
      }
      if (any) continue;
      errors.push({ severity: 'error', message: `no stage matches \`${t}\` in ${p.file}` });
      continue;
    }
    errors.push({
      severity: 'error',
      message: `no stage named \`${t}\` in ${p.file}${didYouMean(t, [...byName, ...byDecl.keys()])}`,
    });
  }
  if (errors.length) return err(errors);
  const adj = adjOf(dag);
  const more = closure(picked, opts.downstream ? adj.succs : adj.preds);
  for (const n of more) picked.add(n);
  return ok(picked);
}
