#!/usr/bin/env node
// The `pipe` command. Runs the compiled CLI (built by `npm ci` / `npm run build` into dist/).
import { existsSync } from 'node:fs';

const cli = new URL('../dist/engine/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('pipe: the CLI is not built yet. Run `npm run build` (npm ci does it) and try again.\n');
  process.exit(2);
}
await import(cli.href);
