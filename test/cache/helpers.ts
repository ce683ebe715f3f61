// Shared by the cache suites: real temp dirs, and child processes that use the compiled cache (dist/, built by the
// global setup) so concurrency is tested between real processes, not promises.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach } from 'vitest';

const made: string[] = [];
afterEach(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

export function tempDir(): string {
  const d = mkdtempSync(`${tmpdir()}/pipe-cache-test-`);
  made.push(d);
  return d;
}

/**
 * Let the clock move past files just written. With `racyWindowMs: 0` a file is memoised only if its timestamps are
 * older than the start of its hashing, which Date.now() (ms, floored) may not yet show for a file written this ms.
 */
export function settle(ms = 15): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Every object file in a store (`<root>/objects/xx/yyyy`). */
export function listObjects(root: string): string[] {
  if (!existsSync(`${root}/objects`)) return [];
  return readdirSync(`${root}/objects`).flatMap((s) => readdirSync(`${root}/objects/${s}`).map((r) => `${root}/objects/${s}/${r}`));
}

export const CACHE_DIST = pathToFileURL(fileURLToPath(new URL('../../dist/cache/index.js', import.meta.url))).href;

export interface ChildResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A running child node process executing `body` (ESM) with `cache` = the compiled cache module and `args`. */
export function startChild(dir: string, body: string, args: unknown): {
  proc: ReturnType<typeof spawn>;
  done: Promise<ChildResult>;
  waitFor(line: string): Promise<void>;
} {
  const file = `${dir}/child-${Math.random().toString(36).slice(2)}.mjs`;
  writeFileSync(file, `import * as cache from ${JSON.stringify(CACHE_DIST)};\nconst args = JSON.parse(process.argv[2]);\n${body}\n`);
  const proc = spawn(process.execPath, [file, JSON.stringify(args)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiters: Array<{ line: string; resolve: () => void }> = [];
  proc.stdout!.setEncoding('utf8').on('data', (s: string) => {
    stdout += s;
    for (const w of waiters.splice(0)) {
      if (stdout.split('\n').includes(w.line)) w.resolve();
      else waiters.push(w);
    }
  });
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const done = new Promise<ChildResult>((resolve) => proc.on('close', (code) => resolve({ code, stdout, stderr })));
  return {
    proc,
    done,
    waitFor(line: string) {
      if (stdout.split('\n').includes(line)) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        waiters.push({ line, resolve });
        void done.then((r) => reject(new Error(`child exited (${r.code}) before printing ${line}: ${r.stderr}`)));
      });
    },
  };
}

export async function runChild(dir: string, body: string, args: unknown): Promise<ChildResult> {
  const r = await startChild(dir, body, args).done;
  if (r.code !== 0) throw new Error(`child failed (${r.code}):\n${r.stderr}`);
  return r;
}
