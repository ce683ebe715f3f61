// Every temp folder the suites make (workspaces, fake stage scratch folders, test servers' files, the CLI's own)
// goes under one folder of this test run, removed when the run ends. A test that forgets its cleanup, or one killed
// by its timeout, leaves nothing in the machine's /tmp: a full run used to leave ~1,500 folders there, and one
// interrupted download test 10 GB.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const root = mkdtempSync(join(tmpdir(), 'pipe-test-'));
  const before = process.env.TMPDIR;
  // Read by os.tmpdir() in every test process (the forks start after global setup) and by every program they run.
  process.env.TMPDIR = root;
  return () => {
    if (before === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = before;
    try {
      rmSync(root, { recursive: true, force: true });
    } catch (e) {
      // A file system a test mounted and could not unmount (EBUSY): say so, and leave the rest to the machine.
      process.stderr.write(`test temp folder ${root} not removed: ${(e as Error).message}\n`);
    }
  };
}
