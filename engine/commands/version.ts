/** pipe's version, read once from package.json (a small file; no JSON import assertions needed). */
import { readFileSync } from 'node:fs';

let version: string | undefined;

export function pipeVersion(): string {
  if (version) return version;
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    version = pkg.version ?? '0.0.0';
  } catch {
    version = '0.0.0';
  }
  return version;
}
