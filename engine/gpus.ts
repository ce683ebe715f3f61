/**
 * GPU device ids for local scheduling: declared with `--gpus 0,1` or detected with nvidia-smi. Detection runs only
 * when some selected local stage asks for GPUs, so no-op runs never spawn nvidia-smi.
 */
import { createRequire } from 'node:module';

/** node:child_process (with net and dgram under it) loads when GPUs are looked for, not on every run. */
const require = createRequire(import.meta.url);

/** `0,1` → ['0','1']; `none`/'' → []. */
export function parseGpuList(text: string): string[] {
  if (text.trim() === '' || text.trim() === 'none') return [];
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Device indexes nvidia-smi reports; [] when nvidia-smi is missing or fails. */
export function detectGpus(): string[] {
  const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
  const r = spawnSync('nvidia-smi', ['--query-gpu=index', '--format=csv,noheader'], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0 || typeof r.stdout !== 'string') return [];
  return r.stdout
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => /^\d+$/.test(s));
}
