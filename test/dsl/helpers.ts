/** Test helpers: write a YAML (and side files) to a fresh temp dir, load it with hand-written kind manifests. */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadPipeline, formatDiagnostic, type Diagnostic, type LoadOptions } from '../../engine/dsl/index.js';
import type { Pipeline, StageSpec } from '../../engine/model.js';
import type { YNode } from '../../engine/dsl/load.js';
import type { StageManifest } from '../../engine/stage-api.js';

export const kinds: Record<string, StageManifest> = {
  'evaluate/fpr': {
    kind: 'evaluate/fpr',
    description: 'False-positive rate of a model on a split.',
    with: {
      model: { type: 'path', role: 'dep', required: true, description: 'Model directory.' },
      split: { type: 'enum', values: ['test', 'calib'], required: true, description: 'Which split.' },
      out: { type: 'path', role: 'out', required: true, description: 'Result JSON.' },
      threshold: { type: 'number', default: 0.5, description: 'Decision threshold.' },
      seeds: { type: 'integer', default: 1, description: 'Bootstrap seeds.' },
      extra_inputs: { type: 'path[]', role: 'dep', default: [], description: 'More inputs.' },
      tags: { type: 'string[]', description: 'Labels.' },
      verbose: { type: 'boolean', default: false, description: 'Talk more.' },
      spec: { type: 'object', description: 'Free-form options.' },
      label: { type: 'string', description: 'A label.' },
    },
    resources: { cpus: 2 },
  },
  'train/cnn': {
    kind: 'train/cnn',
    description: 'Train a CNN.',
    with: {
      data: { type: 'path', role: 'dep', required: true, description: 'Dataset dir.' },
      out: { type: 'path', role: 'out', required: true, description: 'Model dir.' },
      lr: { type: 'number', default: 0.001, description: 'Learning rate.' },
      epochs: { type: 'integer', required: true, description: 'Epochs.' },
    },
    resources: { gpus: 1, memBytes: 4 * 1024 ** 3 },
  },
};

export const resolveKind = async (k: string): Promise<StageManifest | undefined> => kinds[k];

/** A temp workspace holding `pipeline.yaml` (= `yaml`) and `files` (path → content; a trailing `/` makes a dir). */
export function workspace(yaml: string, files: Record<string, string> = {}): { dir: string; file: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'pipe-dsl-'));
  const file = path.join(dir, 'pipeline.yaml');
  writeFileSync(file, yaml);
  for (const [rel, content] of Object.entries(files)) {
    const abs = path.join(dir, rel);
    if (rel.endsWith('/')) mkdirSync(abs, { recursive: true });
    else {
      mkdirSync(path.dirname(abs), { recursive: true });
      writeFileSync(abs, content);
    }
  }
  return { dir, file };
}

export type LoadResult = { ok: true; pipeline: Pipeline; dir: string; file: string } | { ok: false; diagnostics: Diagnostic[]; dir: string; file: string };

export async function load(
  yaml: string,
  files: Record<string, string> = {},
  opts: Partial<LoadOptions> = {},
): Promise<LoadResult> {
  const { dir, file } = workspace(yaml, files);
  const r = await loadPipeline(file, { resolveKind, ...opts });
  return r.ok ? { ok: true, pipeline: r.value, dir, file } : { ok: false, diagnostics: r.error, dir, file };
}

/** Load and expect success; fails the test with the rendered diagnostics otherwise. */
export async function loadOk(yaml: string, files: Record<string, string> = {}, opts: Partial<LoadOptions> = {}): Promise<Pipeline> {
  const r = await load(yaml, files, opts);
  if (!r.ok) throw new Error(`expected a valid pipeline, got:\n${r.diagnostics.map((d) => formatDiagnostic(d)).join('\n')}`);
  return r.pipeline;
}

/** Load and expect failure; returns the diagnostics as `line:col stage field: message` lines plus the raw list. */
export async function loadErr(yaml: string, files: Record<string, string> = {}, opts: Partial<LoadOptions> = {}) {
  const r = await load(yaml, files, opts);
  if (r.ok) throw new Error('expected diagnostics, the pipeline loaded');
  const errors = r.diagnostics.filter((d) => d.severity === 'error');
  // Paths in messages are cwd-relative or absolute: show them relative to the workspace.
  const relDir = path.relative(process.cwd(), r.dir);
  const clean = (s: string) => s.replaceAll(`${r.dir}/`, '').replaceAll(`${relDir}/`, '').replaceAll(r.dir, '.');
  return {
    clean,
    diagnostics: r.diagnostics,
    errors,
    dir: r.dir,
    file: r.file,
    /** `line:col message` for each error. */
    lines: errors.map((d) => clean(`${d.span ? `${d.span.line}:${d.span.col}` : '-'} ${d.message}`)),
    /** `file:line:col` (workspace-relative file) and message for each error. */
    located: errors.map((d) => clean(`${d.span ? `${path.relative(r.dir, d.span.file)}:${d.span.line}:${d.span.col}` : '-'} ${d.message}`)),
    rendered: clean(r.diagnostics.map((d) => formatDiagnostic(d)).join('\n')),
  };
}

export function stage(p: Pipeline, name: string): StageSpec {
  const s = p.stages.find((x) => x.name === name);
  if (!s) throw new Error(`no stage ${name}; have ${p.stages.map((x) => x.name).join(', ')}`);
  return s;
}

/** The pipeline example of issue 2, verbatim: several suites check that it loads, parses and validates. */
export const ISSUE_EXAMPLE = `name: demo
params: {lr: 0.001, epochs: 5}
vars: {datasets: [vindr_cxr, padchest]}
stages:
  train:
    foreach: \${vars.datasets}
    do:
      cmd: node train.js --data data/\${item} --lr \${params.lr} --out models/\${item}
      deps:
        - train.js
        - data/\${item}/
      outs:
        - models/\${item}/
      resources: {gpus: 1, mem: 8G}
  eval:
    matrix:
      model: \${vars.datasets}
      split: [test, calib]
    do:
      uses: evaluate/fpr
      with:
        model: models/\${item.model}/
        split: \${item.split}
        out: out/fpr-\${item.model}-\${item.split}.json
`;

/** A comparable picture of a located YAML tree: values, types, and the offsets of every scalar, key and collection. */
export function yamlShape(n: YNode | undefined): unknown {
  if (!n) return undefined;
  if (n.t === 'scalar') return { v: Number.isNaN(n.value) ? 'NaN' : n.value, s: n.loc.start, e: n.loc.end, raw: n.raw };
  if (n.t === 'seq') return { seq: n.loc.start, items: n.items.map(yamlShape) };
  return { map: n.loc.start, entries: n.entries.map((e) => [e.key, e.keyLoc.start, e.keyLoc.end, yamlShape(e.value)]) };
}
