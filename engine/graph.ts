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

/** An out as the index knows it: its writer, the path as declared, and the writer's position in `p.stages`. */
export interface IndexedOut {
  stage: string;
  path: string;
  index: number;
}

/** Where every out lives, for prefix-aware lookups. */
export class OutIndex {
  /** Out path without trailing `/` → writer. */
  private readonly exact = new Map<string, IndexedOut>();
  /** `path/` keys of every out, sorted, with their writers (for "outs inside directory d"). */
  private readonly sortedKeys: string[];
  private readonly sortedOwners: IndexedOut[];
  /**
   * Answers of producersOf by dep path. Validation and buildDag ask the same questions, and the stages of a wide
   * foreach or matrix mostly share their deps (a script, a dataset): each distinct path is looked up once.
   */
  private readonly answers = new Map<string, IndexedOut[]>();

  constructor(outs: IndexedOut[]) {
    const keys = new Array<string>(outs.length);
    for (let i = 0; i < outs.length; i++) {
      const o = outs[i]!;
      const k = bare(o.path);
      if (!this.exact.has(k)) this.exact.set(k, o);
      keys[i] = [k, '/'].join(''); // one flat string (kept while the index lives), not a rope node
    }
    // Sort a permutation, not an array of {key, owner} pairs: one small typed array instead of an object per out.
    const perm = new Uint32Array(outs.length);
    for (let i = 0; i < perm.length; i++) perm[i] = i;
    perm.sort((a, b) => (keys[a]! < keys[b]! ? -1 : keys[a]! > keys[b]! ? 1 : a - b));
    this.sortedKeys = new Array<string>(perm.length);
    this.sortedOwners = new Array<IndexedOut>(perm.length);
    for (let i = 0; i < perm.length; i++) {
      this.sortedKeys[i] = keys[perm[i]!]!;
      this.sortedOwners[i] = outs[perm[i]!]!;
    }
  }

  /** How many outs are indexed. */
  get size(): number {
    return this.sortedOwners.length;
  }

  /** Every indexed out path. */
  paths(): string[] {
    return this.sortedOwners.map((o) => o.path);
  }

  /**
   * The outs that feed `dep`: the same path, an enclosing directory out, or outs inside the directory `dep`.
   * Shared answers: treat the array as read-only.
   */
  producersOf(dep: string): IndexedOut[] {
    const known = this.answers.get(dep);
    if (known) return known;
    let found = NO_OUTS;
    const add = (o: IndexedOut): void => {
      if (found === NO_OUTS) found = [o];
      else found.push(o);
    };
    const b = bare(dep);
    const same = this.exact.get(b);
    if (same) add(same);
    // Enclosing directories: a/b/c → a/b, a.
    for (let i = b.lastIndexOf('/'); i > 0; i = b.lastIndexOf('/', i - 1)) {
      // An out enclosing the dep is a directory whether it was written `dir` or `dir/`.
      const o = this.exact.get(b.slice(0, i));
      if (o) add(o);
    }
    // Outs strictly inside: keys starting with `b/` (other than `b/` itself).
    const prefix = `${b}/`;
    for (let i = lowerBound(this.sortedKeys, prefix); i < this.sortedKeys.length && this.sortedKeys[i]!.startsWith(prefix); i++) {
      if (this.sortedKeys[i] !== prefix) add(this.sortedOwners[i]!);
    }
    this.answers.set(dep, found);
    return found;
  }

  /** Pairs of outs where one equals or lies inside another (each pair once). Linear in outs plus conflicts. */
  conflicts(): Array<[IndexedOut, IndexedOut]> {
    const pairs: Array<[IndexedOut, IndexedOut]> = [];
    for (let i = 0; i < this.sortedKeys.length; i++) {
      const k = this.sortedKeys[i]!;
      for (let j = i + 1; j < this.sortedKeys.length && this.sortedKeys[j]!.startsWith(k); j++) {
        pairs.push([this.sortedOwners[i]!, this.sortedOwners[j]!]);
      }
    }
    return pairs;
  }
}
const NO_OUTS: IndexedOut[] = Object.freeze([]) as unknown as IndexedOut[];

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

/** Adjacency kept next to each Dag: the algorithms here use it instead of graphlib (cheaper at 100,000 stages). */
interface Adjacency {
  /** Only stages with an edge on that side have an entry. */
  preds: Map<string, string[]>;
  succs: Map<string, string[]>;
  /** Stage name → position in `order`, built when first needed (sorting a selection). */
  index(): Map<string, number>;
}

/** Dags already built for a pipeline (loadPipeline builds one while validating; the engine reuses it). */
const built = new WeakMap<Pipeline, Dag>();
const outIndexes = new WeakMap<Pipeline, OutIndex>();
const NONE: string[] = Object.freeze([]) as unknown as string[];

/** The index of a pipeline's outs (built once; validation and buildDag share it). */
export function outIndexOf(p: Pipeline): OutIndex {
  let idx = outIndexes.get(p);
  if (!idx) {
    const outs: IndexedOut[] = [];
    p.stages.forEach((s, index) => {
      for (const o of s.outs) outs.push({ stage: s.name, path: o.path, index });
    });
    idx = new OutIndex(outs);
    outIndexes.set(p, idx);
  }
  return idx;
}
const adjacency = new WeakMap<Dag, Adjacency>();

/**
 * Build the DAG. The graphlib `graph` and the `producers` map are materialised on first access (node labels: the
 * StageSpecs; edge labels: the dep paths that made the edge); order, cycle detection and the selections below work
 * on stage positions (numbers), with no per-stage strings, closures or maps.
 */
export function buildDag(p: Pipeline): Result<Dag, Diagnostic[]> {
  const cached = built.get(p);
  if (cached) return ok(cached);
  const stages = p.stages;
  const n = stages.length;
  const index = outIndexOf(p);
  // Edges as (from, to) positions; labels by `from * n + to` (a number key: no string per edge).
  const labels = new Map<number, string[]>();
  const from: number[] = [];
  const to: number[] = [];
  for (let j = 0; j < n; j++) {
    const s = stages[j]!;
    for (const d of s.deps) {
      for (const prod of index.producersOf(d.path)) {
        const i = prod.index;
        if (i === j) continue; // a stage reading inside its own out: not an edge (validation reports exact overlaps)
        const key = i * n + j;
        const l = labels.get(key);
        if (l) {
          if (!l.includes(d.path)) l.push(d.path);
          continue;
        }
        labels.set(key, [d.path]);
        from.push(i);
        to.push(j);
      }
    }
  }
  const makeGraph = (): Graph => {
    const g: Graph = new (lib().Graph)({ directed: true });
    for (const s of stages) g.setNode(s.name, s);
    for (const [key, l] of labels) g.setEdge(stages[Math.floor(key / n)]!.name, stages[key % n]!.name, l);
    return g;
  };
  const topo = topoOrder(n, from, to);
  if (topo.length < n) {
    const acyclic = new Set<string>();
    for (const i of topo) acyclic.add(stages[i]!.name);
    return err(cycleDiagnostics(makeGraph(), stages, acyclic));
  }
  const order = new Array<string>(n);
  for (let k = 0; k < n; k++) order[k] = stages[topo[k]!]!.name;
  // Name adjacency only for stages that have edges (most stages of a wide foreach have none on one side).
  const preds = new Map<string, string[]>();
  const succs = new Map<string, string[]>();
  for (let e = 0; e < from.length; e++) {
    const a = stages[from[e]!]!.name;
    const b = stages[to[e]!]!.name;
    const pl = preds.get(b);
    if (pl) pl.push(a);
    else preds.set(b, [a]);
    const sl = succs.get(a);
    if (sl) sl.push(b);
    else succs.set(a, [b]);
  }
  let graph: Graph | undefined;
  let producers: Map<string, string> | undefined;
  const dag: Dag = {
    get graph() {
      return (graph ??= makeGraph());
    },
    order,
    get producers() {
      if (!producers) {
        producers = new Map();
        for (const s of stages) for (const o of s.outs) if (!producers.has(o.path)) producers.set(o.path, s.name);
      }
      return producers;
    },
  };
  let positions: Map<string, number> | undefined;
  adjacency.set(dag, { preds, succs, index: () => (positions ??= new Map(order.map((name, i) => [name, i]))) });
  built.set(p, dag);
  return ok(dag);
}

/**
 * Kahn's algorithm over stage positions; free choices follow declaration order (a FIFO of positions, seeded in
 * declaration order). Returns the positions in topological order; nodes on cycles are left out.
 */
function topoOrder(n: number, from: number[], to: number[]): Uint32Array {
  // Successor lists in CSR form: one typed array for all edges, offsets per node.
  const indeg = new Uint32Array(n);
  const start = new Uint32Array(n + 1);
  for (let e = 0; e < from.length; e++) {
    indeg[to[e]!]!++;
    start[from[e]! + 1]!++;
  }
  for (let i = 0; i < n; i++) start[i + 1]! += start[i]!;
  const fill = start.slice(0, n);
  const succ = new Uint32Array(from.length);
  for (let e = 0; e < from.length; e++) succ[fill[from[e]!]!++] = to[e]!;
  const queue = new Uint32Array(n);
  let tail = 0;
  for (let i = 0; i < n; i++) if (indeg[i] === 0) queue[tail++] = i;
  for (let head = 0; head < tail; head++) {
    const v = queue[head]!;
    for (let k = start[v]!; k < start[v + 1]!; k++) {
      const w = succ[k]!;
      if (--indeg[w]! === 0) queue[tail++] = w;
    }
  }
  return queue.subarray(0, tail);
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
    let positions: Map<string, number> | undefined;
    a = { preds, succs, index: () => (positions ??= new Map(dag.order.map((n, i) => [n, i]))) };
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
  const idx = adjOf(dag).index();
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
