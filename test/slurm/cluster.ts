// Shared by the SLURM suites: make sure the real single-node cluster is up (start-cluster.sh is idempotent).
// Where SLURM is not installed the suites are skipped locally, but under CI they must run: CI=true makes its
// absence a failure, since .ci/run installs it.
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const hasSlurm = spawnSync('sh', ['-c', 'command -v sbatch && command -v slurmctld'], { encoding: 'utf8' }).status === 0;
export const requireSlurm = process.env.CI === 'true' || process.env.PIPE_REQUIRE_SLURM === '1';

export function startCluster(): void {
  if (!hasSlurm) {
    if (requireSlurm) throw new Error('SLURM (slurm-wlm, munge) is not installed, but CI requires the SLURM suites to run');
    return;
  }
  const script = fileURLToPath(new URL('./start-cluster.sh', import.meta.url));
  execFileSync('bash', [script], { stdio: 'inherit', timeout: 120_000 });
}

export function setNodeState(state: 'down' | 'resume', reason = 'pipe test'): void {
  const args = ['update', 'nodename=localhost', `state=${state}`];
  if (state === 'down') args.push(`reason=${reason}`);
  try {
    execFileSync('scontrol', args, { stdio: 'ignore' });
  } catch (e) {
    // ReturnToService=2 brings a downed node back by itself when slurmd re-registers: resuming it then fails.
    if (state === 'down') throw e;
  }
}

export function queuedIds(): string[] {
  const out = execFileSync('squeue', ['-h', '-r', '--me', '-o', '%i'], { encoding: 'utf8' });
  return out.split('\n').map((s) => s.trim()).filter(Boolean);
}
