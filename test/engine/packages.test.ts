// Installed package versions for the toolchain part of a key (engine/packages.ts): Node's lookup, from npm's hidden
// lock file or from package.json files; a change anywhere in a package's dependency tree changes its entry.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { forgetInstalledPackages, installedVersions } from '../../engine/packages.js';

let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function pkg(rel: string, version: string, dependencies: Record<string, string> = {}): void {
  mkdirSync(join(dir, rel), { recursive: true });
  writeFileSync(join(dir, rel, 'package.json'), JSON.stringify({ name: rel.split('node_modules/').pop(), version, dependencies }));
}

function project(): void {
  dir = mkdtempSync(join(tmpdir(), 'pipe-pkgs-'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ dependencies: { a: '*', '@s/c': '*' } }));
  pkg('node_modules/a', '1.0.0', { b: '*' });
  pkg('node_modules/b', '2.0.0', { d: '*' });
  pkg('node_modules/a/node_modules/d', '3.0.0'); // nested: a's own d
  pkg('node_modules/d', '4.0.0');
  pkg('node_modules/@s/c', '5.0.0');
  mkdirSync(join(dir, 'dist', 'x'), { recursive: true });
}

const versions = (roots: string[]) => {
  forgetInstalledPackages();
  return installedVersions(new Map(roots.map((r) => [r, join(dir, 'dist', 'x')])), dir);
};

describe('installed versions', () => {
  it('names each package with its version and a tree digest; a version change deep in the tree changes it', () => {
    project();
    const v1 = versions(['a', '@s/c', 'missing']);
    expect(v1.a).toMatch(/^1\.0\.0 tree [0-9a-f]{12}$/);
    expect(v1['@s/c']).toMatch(/^5\.0\.0 tree /);
    expect(v1.missing).toBe('not installed');
    // b → d resolves from b's folder up: the top-level d (4.0.0), not a's nested one.
    pkg('node_modules/a/node_modules/d', '3.0.1');
    expect(versions(['a']).a).toBe(v1.a);
    pkg('node_modules/d', '4.0.1');
    const v2 = versions(['a', '@s/c']);
    expect(v2.a).not.toBe(v1.a);
    expect(v2.a.startsWith('1.0.0 tree ')).toBe(true);
    expect(v2['@s/c']).toBe(v1['@s/c']);
  });

  it("reads npm's hidden lock file when present (no package.json is read)", () => {
    project();
    const fromFiles = versions(['a']);
    const packages = {
      'node_modules/a': { version: '1.0.0', dependencies: { b: '*' } },
      'node_modules/b': { version: '2.0.0', dependencies: { d: '*' } },
      'node_modules/a/node_modules/d': { version: '3.0.0' },
      'node_modules/d': { version: '4.0.0' },
      'node_modules/@s/c': { version: '5.0.0' },
    };
    writeFileSync(join(dir, 'node_modules', '.package-lock.json'), JSON.stringify({ packages }));
    // Break every package.json: only the lock file can answer now.
    for (const p of Object.keys(packages)) writeFileSync(join(dir, p, 'package.json'), '{broken');
    expect(versions(['a'])).toEqual(fromFiles);
  });
});
