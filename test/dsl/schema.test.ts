import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { pipelineJsonSchema } from '../../engine/dsl/index.js';
import { FOREACH_KEYS, MATRIX_KEYS, STAGE_KEYS, TOP_KEYS } from '../../engine/dsl/schema.js';
import { ISSUE_EXAMPLE, kinds } from './helpers.js';

const FILE = fileURLToPath(new URL('../../docs/pipeline.schema.json', import.meta.url));
const generated = () => `${JSON.stringify(pipelineJsonSchema(), null, 2)}\n`;

describe('JSON Schema for editors', () => {
  it('docs/pipeline.schema.json is the generated schema (regenerate: UPDATE_SCHEMA=1 npx vitest run test/dsl/schema.test.ts)', () => {
    if (process.env.UPDATE_SCHEMA === '1') writeFileSync(FILE, generated());
    expect(readFileSync(FILE, 'utf8')).toBe(generated());
  });

  it('describes every key the loader accepts, and nothing else', () => {
    const s = pipelineJsonSchema() as any;
    expect(Object.keys(s.properties)).toEqual(Object.keys(TOP_KEYS));
    expect(s.additionalProperties).toBe(false);
    expect(Object.keys(s.definitions.stage.properties)).toEqual(Object.keys(STAGE_KEYS));
    expect(Object.keys(s.definitions.foreach.properties)).toEqual(Object.keys(FOREACH_KEYS));
    expect(Object.keys(s.definitions.matrix.properties)).toEqual(Object.keys(MATRIX_KEYS));
    expect(s.definitions.stage.properties.deps.description).toBe(STAGE_KEYS.deps);
  });

  it('with kinds, `with:` is checked per `uses:` kind (if/then)', () => {
    const s = pipelineJsonSchema(Object.values(kinds)) as any;
    const stage = s.definitions.stage;
    expect(stage.properties.uses.enum).toEqual(['evaluate/fpr', 'train/cnn']);
    const fpr = stage.allOf.find((c: any) => c.if.properties.uses.const === 'evaluate/fpr');
    const w = fpr.then.properties.with.anyOf[0];
    expect(w.required).toEqual(['model', 'split', 'out']);
    expect(w.additionalProperties).toBe(false);
    expect(w.properties.split.anyOf[0]).toEqual({ enum: ['test', 'calib'] });
    expect(w.properties.threshold.default).toBe(0.5);
  });
});

describe('the schema accepts what the loader accepts (ajv)', async () => {
  const { default: Ajv } = await import('ajv');
  const { parse } = await import('yaml');
  const ajv = new Ajv({ allErrors: true, strict: false });
  const validate = ajv.compile(pipelineJsonSchema(Object.values(kinds)));
  const check = (yaml: string) => (validate(parse(yaml)) ? [] : validate.errors!.map((e) => `${e.instancePath} ${e.message}`));

  it('accepts the issue example and a pipeline using every feature', () => {
    expect(check(ISSUE_EXAMPLE)).toEqual([]);
    expect(check(`
workdir: ..
include: [a.yaml]
params_files: [p.yaml]
settings: {cache_dir: c, restore: [reflink, copy], executor: slurm, slurm: {partition: gpu, gpu_flag: gpus, extra: [-N1]}, summary: [o]}
stages:
  s:
    cmd: [a, b]
    deps: x
    outs: [o, {path: p, cache: false}]
    metrics: [{path: m.json, cache: false}]
    params: [lr]
    env: {A: 1, B: x}
    resources: {cpus: 2, mem: 512M, gpus: 1, time: 01:30:00}
    executor: local
    slurm: {qos: high}
    retries: {count: 2, mem_factor: 2}
    always_run: true
    cache: false
    watch: manual
    desc: d
  t:
    uses: train/cnn
    with: {data: d/, out: m/, epochs: 3}
`)).toEqual([]);
  });

  it('rejects unknown keys, cmd with uses, and bad with: fields', () => {
    expect(check(`stages:\n  s: {cmd: x, dpes: [a]}\n`).length).toBeGreaterThan(0);
    expect(check(`stages:\n  s: {cmd: x, uses: train/cnn}\n`).length).toBeGreaterThan(0);
    expect(check(`stages:\n  s: {uses: evaluate/fpr, with: {model: m, split: tset, out: o}}\n`).length).toBeGreaterThan(0);
    expect(check(`stages:\n  s: {uses: evaluate/fpr, with: {model: m, split: test}}\n`).length).toBeGreaterThan(0);
    expect(check(`stages:\n  s: {uses: evaluate/fpr, with: {model: m, split: test, out: o}}\n`)).toEqual([]);
    expect(check(`stages:\n  s: {uses: evaluate/fpr, with: "\${item}"}\n`)).toEqual([]);
    expect(check(`nmae: x\n`).length).toBeGreaterThan(0);
  });
});
