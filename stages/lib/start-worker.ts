/**
 * Starts a worker thread on a module of ours given by its compiled URL (`new URL('./worker.js', import.meta.url)`).
 * The compiled pipeline (dist/) starts the .js file directly; under vitest/tsx the sources are TypeScript, so the
 * worker loads the .ts twin through tsx's loader. One place for this, so every pool of ours starts workers the same way.
 */
import { Worker } from 'node:worker_threads';

const fromSources = import.meta.url.endsWith('.ts');

export function startWorker(entry: URL): Worker {
  if (!fromSources) return new Worker(entry);
  const ts = new URL(entry.href.replace(/\.js$/, '.ts'));
  return new Worker(`import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(ts.href)}); })`, {
    eval: true,
  });
}
