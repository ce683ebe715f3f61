/** `--json`: one JSON object per event per line on stdout, for tools. */
import type { PipeEvent } from '../events.js';

export function jsonRenderer(write: (s: string) => void = (s) => process.stdout.write(s)): (e: PipeEvent) => void {
  return (e) => write(`${JSON.stringify(e)}\n`);
}
