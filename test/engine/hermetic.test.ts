// Hermetic stages (issue 10.6): a kind gets only its keyed params and no ambient environment but the pass-through
// list and the variables its manifest names; `cmd` stages under `settings.env: strict` likewise. Real processes.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { taskScript } from '../../engine/executors/slurm-script.js';
import { PASS_THROUGH } from '../../engine/env.js';
import { nestParams } from '../../engine/run/dispatch.js';
import { pipe, statuses, workspace, type Ws } from './helpers.js';

let ws: Ws;
afterEach(() => ws?.cleanup());

/** A kind that writes what it was given: ctx.params and its process environment. */
function dumpKind(w: Ws): string {
  const dir = join(w.dir, 'kinds', 'local', 'dump');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'manifest.js'),
    `export const manifest = { kind: 'local/dump', description: 'test', with: { out: { type: 'path', role: 'out', required: true, description: '' }, token_env: { type: 'string', description: '' } }, envFrom: (w) => (w.token_env ? [w.token_env] : []) };\n`,
  );
  writeFileSync(
    join(dir, 'run.js'),
    `import { writeFileSync } from 'node:fs';\nexport async function run(ctx) { writeFileSync(ctx.resolve(ctx.with.out), JSON.stringify({ params: ctx.params, env: process.env })); }\n`,
  );
  return join(w.dir, 'kinds');
}

const ambient = {
  PIPE_TF_BACKEND: 'cpu',
  SECRET_THING: 'do-not-leak',
  MY_TOKEN: 'tok',
  LC_ALL: 'C.UTF-8',
  HTTPS_PROXY: 'http://127.0.0.1:9',
  SLURM_JOB_ID: '77',
};

describe('uses stages', () => {
  it('ctx.params holds only the params in the key; the environment is the pass-through list plus what the manifest names', () => {
    ws = workspace({
      'p.yaml':
        'name: h\nparams: {used: 1, unused: 2, model: {lr: 0.1, depth: 3}}\nstages:\n' +
        '  d:\n    uses: local/dump\n    with: {out: out/d.json, token_env: MY_TOKEN}\n    params: [used, model.lr]\n',
    });
    const r = pipe(ws.dir, ['run', 'p.yaml', '--json'], { PIPE_KINDS_PATH: dumpKind(ws), ...ambient });
    expect(r.code, r.stderr).toBe(0);
    const got = JSON.parse(ws.read('out/d.json')) as { params: unknown; env: Record<string, string> };
    expect(got.params).toEqual({ used: 1, model: { lr: 0.1 } });
    expect(got.env.PIPE_TF_BACKEND).toBeUndefined();
    expect(got.env.SECRET_THING).toBeUndefined();
    expect(got.env.PIPE_KINDS_PATH).toBeUndefined();
    expect(got.env).toMatchObject({ MY_TOKEN: 'tok', LC_ALL: 'C.UTF-8', HTTPS_PROXY: 'http://127.0.0.1:9', SLURM_JOB_ID: '77', PIPE_STAGE: 'd', PIPE_WORKSPACE: ws.dir });
    expect(got.env.PATH).toBe(process.env.PATH);
    // Every variable it saw is a pass-through one, one the engine set, or one the manifest named.
    for (const name of Object.keys(got.env)) {
      expect(PASS_THROUGH.some((p) => (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : p === name)) || name.startsWith('PIPE_') || name === 'MY_TOKEN', name).toBe(true);
    }
    // An ambient change the kind cannot see does not re-run it.
    const again = pipe(ws.dir, ['run', 'p.yaml', '--json'], { PIPE_KINDS_PATH: join(ws.dir, 'kinds'), ...ambient, PIPE_TF_BACKEND: 'wasm' });
    expect(statuses(again.stdout).d).toBe('up-to-date');
  });

  it('nests dotted params as the pipeline does; a part of a param used whole is not repeated', () => {
    expect(nestParams({ 'a.b': 1, c: 2, 'd.e.f': 3 })).toEqual({ a: { b: 1 }, c: 2, d: { e: { f: 3 } } });
    expect(nestParams({ a: { b: 1, x: 2 }, 'a.b': 1 })).toEqual({ a: { b: 1, x: 2 } });
  });
});

describe('cmd stages: settings.env', () => {
  const yaml = (mode: string) => `name: e\n${mode ? `settings: {env: ${mode}}\n` : ''}stages:\n  s:\n    cmd: env > out/env.txt\n    env: {DECLARED: yes}\n    outs: [out/env.txt]\n`;
  const envOf = (w: Ws): Record<string, string> => Object.fromEntries(w.read('out/env.txt').trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));

  it('inherit (the default) passes the whole environment', () => {
    ws = workspace({ 'p.yaml': yaml('') });
    expect(pipe(ws.dir, ['run', 'p.yaml'], ambient).code).toBe(0);
    expect(envOf(ws)).toMatchObject({ SECRET_THING: 'do-not-leak', DECLARED: 'yes' });
  });

  it('strict passes only the declared env and the pass-through list', () => {
    ws = workspace({ 'p.yaml': yaml('strict') });
    const r = pipe(ws.dir, ['run', 'p.yaml'], ambient);
    expect(r.code, r.stderr).toBe(0);
    const env = envOf(ws);
    expect(env.SECRET_THING).toBeUndefined();
    expect(env.PIPE_TF_BACKEND).toBeUndefined();
    expect(env).toMatchObject({ DECLARED: 'yes', LC_ALL: 'C.UTF-8', PIPE_STAGE: 's' });
    expect(env.PATH).toBe(process.env.PATH);
  });

  it('a value other than inherit or strict is a located error', () => {
    ws = workspace({ 'p.yaml': yaml('loose') });
    const r = pipe(ws.dir, ['run', 'p.yaml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/p\.yaml:2:\d+.*`env` must be `inherit` or `strict`, not `loose`/);
  });
});

describe('SLURM task script', () => {
  it('a hermetic job keeps only the pass-through names and its own variables of the node environment (names, not values, in the script)', () => {
    ws = workspace();
    const script = taskScript(
      {
        id: 'j',
        stage: 's',
        group: 's',
        key: 'k',
        argv: ['sh', '-c', `env > ${join(ws.dir, 'env.txt')}`],
        cwd: ws.dir,
        env: { PIPE_STAGE: 's' },
        passEnv: [...PASS_THROUGH, 'MY_TOKEN'],
        resources: { cpus: 1, memBytes: 0, gpus: 0 },
        gpuIds: [],
        logFile: join(ws.dir, 'log'),
        slurm: {},
      },
      join(ws.dir, 'marker'),
    );
    expect(script).not.toContain('tok');
    writeFileSync(join(ws.dir, 'task.sh'), script);
    const r = spawnSync('bash', [join(ws.dir, 'task.sh')], { env: { PATH: process.env.PATH, SLURM_JOB_ID: '5', MY_TOKEN: 'tok', SECRET_THING: 'x' }, encoding: 'utf8' });
    expect(r.status, r.stderr + readFileSync(join(ws.dir, 'log'), 'utf8')).toBe(0);
    const env = readFileSync(join(ws.dir, 'env.txt'), 'utf8');
    expect(env).toMatch(/^SLURM_JOB_ID=5$/m);
    expect(env).toMatch(/^MY_TOKEN=tok$/m);
    expect(env).toMatch(/^PIPE_STAGE=s$/m);
    expect(env).toMatch(/^PIPE_SLURM_JOB=5$/m);
    expect(env).not.toMatch(/SECRET_THING/);
  });
});
