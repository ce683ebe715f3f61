import { describe, expect, it } from 'vitest';
import { parseMem, parseTime } from '../../engine/dsl/index.js';
import { parseTemplate } from '../../engine/dsl/interpolate.js';
import { normalisePath } from '../../engine/dsl/paths.js';

describe('memory sizes', () => {
  it.each([
    [1024, 1024],
    ['1024', 1024],
    ['512M', 512 * 1024 ** 2],
    ['8G', 8 * 1024 ** 3],
    ['8g', 8 * 1024 ** 3],
    ['8GB', 8 * 1024 ** 3],
    ['8GiB', 8 * 1024 ** 3],
    ['1.5T', 1.5 * 1024 ** 4],
    ['64K', 65536],
    ['100B', 100],
  ])('%s → %d bytes', (v, bytes) => expect(parseMem(v)).toBe(bytes));
  it.each(['8X', 'G', '', '-1G', 'lots', '8 G B'])('%s is rejected', (v) => expect(parseMem(v)).toBeUndefined());
});

describe('durations', () => {
  it.each([
    [90, 90],
    ['90', 90],
    ['01:30:00', 5400],
    ['30:00', 1800],
    ['2-12:00:00', 216000],
    ['1-0', 86400],
    ['90m', 5400],
    ['2h', 7200],
    ['1h30m', 5400],
    ['45s', 45],
    ['1d', 86400],
    ['10min', 600],
  ])('%s → %d s', (v, sec) => expect(parseTime(v)).toBe(sec));
  it.each(['soon', '', '0', '1x', '::'])('%s is rejected', (v) => expect(parseTime(v)).toBeUndefined());
});

describe('templates', () => {
  it('splits literals and expressions, handles $${ and lone $', () => {
    const t = parseTemplate('a ${params.x} $${lit} $HOME ${item[0].n}');
    expect(t.parts).toEqual([
      'a ',
      { path: ['params', 'x'], text: '${params.x}', start: 2, end: 13 },
      ' ${lit} $HOME ',
      { path: ['item', '0', 'n'], text: '${item[0].n}', start: 28, end: 40 },
    ]);
    expect(t.whole).toBe(false);
    expect(parseTemplate('${vars.x}').whole).toBe(true);
    expect(parseTemplate('${ vars.x }').parts).toEqual([{ path: ['vars', 'x'], text: '${ vars.x }', start: 0, end: 11 }]);
  });
});

describe('paths', () => {
  it.each([
    ['a/b.csv', 'a/b.csv'],
    ['./a/b/', 'a/b/'],
    ['a//b/./c', 'a/b/c'],
    ['a/x/../b', 'a/b'],
    ['/ws/sub/f', 'sub/f'],
    ['.hidden/x', '.hidden/x'],
  ])('%s → %s', (raw, out) => {
    const n = normalisePath(raw, '/ws');
    expect(n).toMatchObject({ ok: true, path: out, outside: false });
  });
  it('paths leaving the workspace are absolute and flagged', () => {
    expect(normalisePath('../x', '/ws/in')).toEqual({ ok: true, path: '/ws/x', dir: false, outside: true });
    expect(normalisePath('/etc/', '/ws')).toEqual({ ok: true, path: '/etc/', dir: true, outside: true });
    expect(normalisePath('.', '/ws')).toEqual({ ok: false, reason: 'the workspace root itself' });
  });
  it('a path whose `..` leaves and re-enters the workspace is workspace-relative, as the absolute path into it is', () => {
    expect(normalisePath('../ws/out/a.txt', '/ws')).toEqual({ ok: true, path: 'out/a.txt', dir: false, outside: false });
    expect(normalisePath('out/../../ws/out/', '/ws')).toEqual({ ok: true, path: 'out/', dir: true, outside: false });
    expect(normalisePath('../ws', '/ws')).toEqual({ ok: false, reason: 'the workspace root itself' });
    // A name that merely starts with `..` is inside.
    expect(normalisePath('/ws/..a/b', '/ws')).toEqual({ ok: true, path: '..a/b', dir: false, outside: false });
    expect(normalisePath('../wsx/a', '/ws')).toEqual({ ok: true, path: '/wsx/a', dir: false, outside: true });
  });
});
