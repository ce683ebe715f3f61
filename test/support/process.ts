/** Processes as tests see them: through /proc, so a zombie (exited, not yet reaped) counts as gone. */
import { readFileSync } from 'node:fs';

/** Alive and not a zombie. */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
