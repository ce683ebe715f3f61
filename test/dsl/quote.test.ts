import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { shellQuote } from '../../engine/dsl/quote.js';
import { load, stage } from './helpers.js';

/** Run `cmd` with a real `sh -c` in `cwd`; the command prints each argument of `node -e` as JSON. */
function sh(cmd: string, cwd: string): string {
  return execFileSync('sh', ['-c', cmd], { cwd, encoding: 'utf8' });
}

const NASTY = [
  '; touch pwned',
  '$(touch pwned2)',
  '`touch pwned3`',
  "it's | touch pwned4 && echo",
  '  spaces  and\ttabs ',
  '~',
  '*',
  '"double" \\back',
  '',
  'a\nb',
];

describe('shell quoting of interpolated values', () => {
  it('quotes only when needed', () => {
    expect(shellQuote('models/vindr_cxr')).toBe('models/vindr_cxr');
    expect(shellQuote('0.001')).toBe('0.001');
    expect(shellQuote('--lr=1e-3')).toBe('--lr=1e-3');
    expect(shellQuote('a b')).toBe(`'a b'`);
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    expect(shellQuote('')).toBe(`''`);
  });

  it('a param holding shell syntax reaches the program as one intact argument (real sh -c)', async () => {
    const r = await load(
      `
params:
  evil: "; touch pwned"
  list: ${JSON.stringify(NASTY)}
stages:
  s:
    cmd: node -e "console.log(JSON.stringify(process.argv.slice(1)))" \${params.evil} x\${params.evil}y \${params.list}
    outs: [o]
`,
      {},
    );
    if (!r.ok) throw new Error(JSON.stringify(r.diagnostics));
    const cmd = stage(r.pipeline, 's').cmd!;
    const before = readdirSync(r.dir).sort();
    const out = sh(cmd, r.dir);
    expect(JSON.parse(out)).toEqual(['; touch pwned', 'x; touch pwnedy', ...NASTY]);
    expect(readdirSync(r.dir).sort()).toEqual(before);
    for (const f of ['pwned', 'pwned2', 'pwned3', 'pwned4']) expect(existsSync(path.join(r.dir, f))).toBe(false);
  });

  it('foreach items and matrix values are quoted too; values outside cmd are inserted raw', async () => {
    const r = await load(`
stages:
  s:
    foreach: ["a b", "c;d"]
    do:
      cmd: node -e "console.log(process.argv[1])" \${item}
      env: {ITEM: \${item}}
      outs: ["out/\${item}.txt"]
`);
    if (!r.ok) throw new Error(JSON.stringify(r.diagnostics));
    const s = stage(r.pipeline, 's@c;d');
    expect(s.cmd).toBe(`node -e "console.log(process.argv[1])" 'c;d'`);
    expect(s.env.ITEM).toBe('c;d');
    expect(s.outs[0]!.path).toBe('out/c;d.txt');
    expect(sh(s.cmd!, r.dir)).toBe('c;d\n');
  });
});
