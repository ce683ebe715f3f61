/**
 * The one workspace fixture: a real temp folder with files written into it, and its teardown (`cleanup()`, called
 * by the suite's afterEach/afterAll; the watch suites' `watchWorkspace` tears down at the end of each test).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export interface Ws {
  dir: string;
  write(rel: string, text: string | Buffer): void;
  read(rel: string): string;
  exists(rel: string): boolean;
  rm(rel: string): void;
  cleanup(): void;
}

/** A fresh folder under the system temp dir holding `files` (workspace-relative path → content). */
export function workspace(files: Record<string, string> = {}, prefix = 'pipe-engine-'): Ws {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const ws: Ws = {
    dir,
    write(rel, text) {
      mkdirSync(dirname(join(dir, rel)), { recursive: true });
      writeFileSync(join(dir, rel), text);
    },
    read: (rel) => readFileSync(join(dir, rel), 'utf8'),
    exists: (rel) => existsSync(join(dir, rel)),
    rm: (rel) => rmSync(join(dir, rel), { recursive: true, force: true }),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
  for (const [rel, text] of Object.entries(files)) ws.write(rel, text);
  return ws;
}
