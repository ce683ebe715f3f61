/** `--json`: one JSON object per event per line on stdout, for tools (coalesced into few writes; flushed at run-end). */
import type { PipeEvent } from '../events.js';
import { bufferedWriter } from './format.js';

export function jsonRenderer(write?: (s: string) => void): (e: PipeEvent) => void {
  const out = write ? undefined : bufferedWriter(process.stdout);
  const w = write ?? out!.write;
  return (e) => {
    w(`${JSON.stringify(e)}\n`);
    // Flush promptly on what a tool waits for (a stage starting or ending) and at the end.
    if (e.type === 'run-end' || e.type === 'stage-start' || e.type === 'diagnostics' || e.type === 'verify-stage') out?.flush();
  };
}
