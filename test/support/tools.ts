/** External programs the tests drive, found the way `.ci/run` finds them (`command -v`): on PATH, nowhere else. */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** The first executable file named `name` in PATH's folders, or undefined. */
export function onPath(name: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    const file = join(dir, name);
    try {
      if (!statSync(file).isFile()) continue;
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Under CI (`CI=true`, as .ci/run sets it) a missing tool fails its suite; elsewhere the suite is skipped. */
export const requireTools = process.env.CI === 'true';
