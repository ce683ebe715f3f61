// Tests run the real CLI from dist/: compile once before any suite (tsc is incremental, so this is quick when
// nothing changed). Type errors do not stop the emit; `npm run typecheck` is where they fail the build.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const tsc = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], {
    cwd: root,
    encoding: 'utf8',
  });
  if (tsc.status !== 0 && !/error TS/.test(tsc.stdout)) {
    throw new Error(`tsc failed to run:\n${tsc.stdout}\n${tsc.stderr}`);
  }
}
