#!/usr/bin/env node
// `npm run bench -- NAME [args]` runs bench/NAME.ts; with no NAME, every bench in turn.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('.', import.meta.url));
const [name, ...args] = process.argv.slice(2);
const names = name ? [name] : readdirSync(dir).filter((f) => f.endsWith('.ts')).map((f) => f.slice(0, -3));
let status = 0;
for (const n of names) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', `${dir}${n}.ts`, ...args], { stdio: 'inherit' });
  if (r.status !== 0) status = r.status ?? 1;
}
process.exit(status);
