// docs/security.md names, for each promise, the test file that proves it and often the test's title: a renamed or
// deleted test, or a promise quoted from a title that no longer exists, fails here instead of leaving the note stale.
// Each row of its tables and the env vars/settings of its bounds table are checked against the repository.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DOC = readFileSync(`${ROOT}docs/security.md`, 'utf8');
const rows = DOC.split('\n').filter((l) => l.startsWith('| ') && /`test\/[^`]+\.test\.ts`/.test(l));

describe('docs/security.md', () => {
  it('every promise row names test files that exist, and every quoted title is in one of them', () => {
    expect(rows.length).toBeGreaterThan(30);
    for (const row of rows) {
      const last = row.slice(row.lastIndexOf('|', row.length - 2));
      const files = [...last.matchAll(/`(test\/[^`]+\.test\.ts)`/g)].map((m) => m[1]!);
      expect(files.length, row).toBeGreaterThan(0);
      for (const f of files) expect(existsSync(`${ROOT}${f}`), `${f} in: ${row}`).toBe(true);
      const texts = files.map((f) => readFileSync(`${ROOT}${f}`, 'utf8')).join('\n');
      for (const [, quoted] of last.matchAll(/\("([^"]+)"\)/g)) {
        expect(texts, `"${quoted}" in: ${row}`).toContain(quoted!.replace(/…$/, ''));
      }
    }
  });

  it('every environment variable and with: field the bounds table names is read by the code', () => {
    const bounds = DOC.slice(DOC.indexOf('### 3. Bounds'), DOC.indexOf('### 4.'));
    const names = new Set([...bounds.matchAll(/`(PIPE_[A-Z_]+|with\.[a-z_]+)`/g)].map((m) => m[1]!));
    expect(names.size).toBeGreaterThan(8);
    const sources = ['engine/dsl/limits.ts', 'engine/stage-api.ts', 'stages/download/manifest.ts', 'stages/preprocess/images/manifest.ts', 'stages/split/manifest.ts', 'stages/review/lib/workbook.ts']
      .map((f) => readFileSync(`${ROOT}${f}`, 'utf8'))
      .join('\n');
    for (const n of names) expect(sources, n).toContain(n.replace(/^with\./, ''));
  });
});
