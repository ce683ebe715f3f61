// A small pipeline for the experiment suites (cmd stages, a fraction of a second each) and what they check it with.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { workspace, type Ws } from '../engine/helpers.js';

/**
 * prep (no params: common to every variant) → train (scale) → evaluate (writes out/metrics.json; fails for scale 0).
 * Each stage logs to $RUNLOG (outside the workspace) when it really runs; train waits at a barrier until $BARRIER_N
 * trainings have started (in $SYNC), so variants run one after another would never get past it.
 */
export const PIPELINE = `name: sweep
params: {scale: 1, cpus: 0.5}
experiments:
  sweep:
    desc: how the score follows the scale
    grid: {scale: [2, 3, 0]}
    metric: score
  solo:
    set: {scale: 5}
stages:
  prep:
    cmd: echo prep >> "$RUNLOG"; seq 1 5 > out/prep.txt; cat in.txt >> out/prep.txt
    deps: [in.txt]
    outs: [out/prep.txt]
  train:
    cmd: sh train.sh \${params.scale}
    deps: [out/prep.txt, train.sh]
    outs: [out/model.txt]
    resources: {cpus: \${params.cpus}}
  evaluate:
    cmd: sh eval.sh \${params.scale}
    deps: [out/model.txt, eval.sh]
    metrics: [out/metrics.json]
    resources: {cpus: \${params.cpus}}
`;

const TRAIN = `# train.sh SCALE: logs when it starts and ends, waits until $BARRIER_N trainings started, writes the model.
echo "train $1 start $(date +%s%N)" >> "$RUNLOG"
touch "$SYNC/started.$1"
i=0
while [ "$(ls "$SYNC" | grep -c '^started')" -lt "\${BARRIER_N:-1}" ]; do
  i=$((i+1))
  if [ $i -gt 600 ]; then echo "only $(ls "$SYNC" | grep -c '^started') of $BARRIER_N trainings started: the variants did not run in parallel" >&2; exit 4; fi
  sleep 0.05
done
grep -E '^[0-9]+$' out/prep.txt | awk -v s="$1" '{print $1*s}' > out/model.txt
echo "train $1 end $(date +%s%N)" >> "$RUNLOG"
`;

const EVAL = `# eval.sh SCALE: a score and a few long-named rates (more metrics than 80 columns hold).
echo "evaluate $1" >> "$RUNLOG"
test "$1" -ne 0 || { echo "scale 0: nothing to evaluate" >&2; exit 3; }
awk -v s="$1" '{t+=$1} END {printf "{\\"score\\": %d, \\"n\\": %d, \\"rates\\": {\\"fpr_children_age_0_1\\": %.4f, \\"fpr_children_age_1_5\\": %.4f, \\"fpr_children_age_5_10\\": %.4f, \\"fpr_adults_healthy\\": %.4f}}\\n", t, NR, 1/s, 2/s, 3/s, 0.1}' out/model.txt > out/metrics.json
`;

export interface SweepWs extends Ws {
  /** Outside the workspace: the run log and the barrier folder. */
  side: string;
  env(barrier?: number): NodeJS.ProcessEnv;
  /** Lines of the run log. */
  log(): string[];
}

export function sweepWorkspace(): SweepWs {
  const ws = workspace({ 'p.yaml': PIPELINE, 'in.txt': 'v1\n', 'train.sh': TRAIN, 'eval.sh': EVAL });
  const side = mkdtempSync(join(tmpdir(), 'pipe-exp-side-'));
  let round = 0;
  const cleanup = ws.cleanup;
  return Object.assign(ws, {
    side,
    cleanup(): void {
      cleanup();
      rmSync(side, { recursive: true, force: true });
    },
    env(barrier = 1): NodeJS.ProcessEnv {
      const sync = mkdtempSync(join(side, `sync-${round++}-`));
      return { RUNLOG: join(side, 'runs.log'), SYNC: sync, BARRIER_N: String(barrier) };
    },
    log(): string[] {
      try {
        return readFileSync(join(side, 'runs.log'), 'utf8').split('\n').filter(Boolean);
      } catch {
        return [];
      }
    },
  });
}

/** git in `dir`, with an author and committer (the machine may have none configured). */
export function git(dir: string, ...args: string[]): string {
  return execFileSync('git', args, {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.org', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.org' },
  });
}

export { snapshot } from '../support/snapshot.js';
