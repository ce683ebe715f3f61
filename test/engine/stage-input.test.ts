// Files one stage reads whole that an earlier stage wrote (predictions, shard index and rows, models, splits, plot
// data and specs) are bounded (engine/stage-api.ts readStageInput, PIPE_MAX_STAGE_INPUT_MB): a FIFO, a directory or
// an oversized file is one clear StageError naming the file and the variable, never a hang, an out-of-memory crash
// or a stack trace. Real files, a real FIFO, a real pipeline.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { readStageInput, readStageInputSync, StageError } from '../../engine/stage-api.js';
import { loadPredictions } from '../../stages/evaluate/lib/predictions.js';
import { pipe, workspace, type Ws } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'pipe-stage-input-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const saved = process.env.PIPE_MAX_STAGE_INPUT_MB;
afterEach(() => {
  if (saved === undefined) delete process.env.PIPE_MAX_STAGE_INPUT_MB;
  else process.env.PIPE_MAX_STAGE_INPUT_MB = saved;
});

describe('readStageInput', () => {
  it('reads a regular file within the bound, whole', async () => {
    writeFileSync(join(dir, 'ok.csv'), 'a,b\n1,2\n');
    expect((await readStageInput(join(dir, 'ok.csv'), 'the data')).toString()).toBe('a,b\n1,2\n');
    expect(readStageInputSync(join(dir, 'ok.csv'), 'the data').toString()).toBe('a,b\n1,2\n');
  });

  it('refuses a file over PIPE_MAX_STAGE_INPUT_MB before reading it, naming the file, its size and the variable', async () => {
    process.env.PIPE_MAX_STAGE_INPUT_MB = '1';
    writeFileSync(join(dir, 'big.csv'), Buffer.alloc(1024 * 1024 + 1, 0x61));
    await expect(readStageInput(join(dir, 'big.csv'), 'the data', 'out/big.csv')).rejects.toThrow(
      new StageError('the data out/big.csv is 1048577 bytes, more than the 1 MiB a stage reads into memory from an earlier stage\'s output; raise PIPE_MAX_STAGE_INPUT_MB to read it.'),
    );
    expect(() => readStageInputSync(join(dir, 'big.csv'), 'the data')).toThrow(/1048577 bytes.*PIPE_MAX_STAGE_INPUT_MB/);
    process.env.PIPE_MAX_STAGE_INPUT_MB = '2';
    expect((await readStageInput(join(dir, 'big.csv'), 'the data')).length).toBe(1024 * 1024 + 1);
  });

  it('never reads a FIFO (which would block) or a directory; says a missing file is missing', async () => {
    const fifo = join(dir, 'fifo.json');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    await expect(readStageInput(fifo, 'the model')).rejects.toThrow(/the model .*fifo\.json is not a regular file \(a directory, FIFO or device\)/);
    expect(() => readStageInputSync(fifo, 'the model')).toThrow(/not a regular file/);
    mkdirSync(join(dir, 'adir'));
    await expect(readStageInput(join(dir, 'adir'), 'the model')).rejects.toThrow(/not a regular file/);
    await expect(readStageInput(join(dir, 'nope.json'), 'the shard index')).rejects.toThrow(/the shard index .*nope\.json does not exist/);
  });
});

describe('gzipped predictions', () => {
  it('are bounded unzipped: a small gzip that expands past PIPE_MAX_STAGE_INPUT_MB is refused naming the file and the variable', () => {
    process.env.PIPE_MAX_STAGE_INPUT_MB = '1';
    const header = 'age_years,Has Finding,Cardiomegaly,class_probs\n';
    // ~3 MiB of rows, a few KiB zipped: under the bound as a file, over it unzipped.
    const bomb = gzipSync(Buffer.from(header + '40,0,0,"[0.5, 0.5]"\n'.repeat(150_000)));
    expect(bomb.length).toBeLessThan(1024 * 1024);
    writeFileSync(join(dir, 'preds.csv.gz'), bomb);
    expect(() => loadPredictions(join(dir, 'preds.csv.gz'), 'preds/preds.csv.gz')).toThrow(
      new StageError('Predictions file preds/preds.csv.gz unzips to more than 1 MiB; raise PIPE_MAX_STAGE_INPUT_MB to read it.'),
    );
    process.env.PIPE_MAX_STAGE_INPUT_MB = '8';
    expect(loadPredictions(join(dir, 'preds.csv.gz'), 'preds/preds.csv.gz')).toBeDefined();
  });
});

describe('through a pipeline', () => {
  let ws: Ws | undefined;
  afterEach(() => {
    ws?.cleanup();
    ws = undefined;
  });

  // One bar (a count): the rows are many to make the file large, not to draw them.
  const spec = JSON.stringify({ mark: 'bar', data: { name: 'd' }, encoding: { x: { field: 'b', type: 'nominal' }, y: { aggregate: 'count', type: 'quantitative' } } });
  const pipeline = (rows: number) =>
    [
      'name: bounded',
      'stages:',
      '  data:',
      `    cmd: (echo a,b; seq 1 ${rows} | sed 's/$/,1/') > out/d.csv`,
      '    outs: [out/d.csv]',
      '  fig:',
      '    uses: plot',
      '    with: {spec: figs/s.vl.json, data: [out/d.csv], svg: out/fig.svg}',
      '',
    ].join('\n');

  it('plot data an upstream stage wrote over the bound: one paragraph naming the file and PIPE_MAX_STAGE_INPUT_MB, exit 1, no stack', () => {
    ws = workspace({ 'figs/s.vl.json': spec, 'p.yaml': pipeline(200_000) }); // ~1.6 MB of CSV
    const r = pipe(ws.dir, ['run', 'p.yaml'], { PIPE_MAX_STAGE_INPUT_MB: '1' });
    expect(r.code).toBe(1);
    const log = r.stdout + r.stderr;
    expect(log).toMatch(/data file out\/d\.csv is \d+ bytes, more than the 1 MiB a stage reads into memory from an earlier stage's output; raise PIPE_MAX_STAGE_INPUT_MB to read it/);
    expect(log).not.toMatch(/\n\s+at .*\.js:\d+/);
    expect(ws.exists('out/fig.svg')).toBe(false);
    // The variable reaches the hermetic stage runner: raised, the same run goes through.
    const again = pipe(ws.dir, ['run', 'p.yaml'], { PIPE_MAX_STAGE_INPUT_MB: '4' });
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(ws.exists('out/fig.svg')).toBe(true);
  });
});
