/**
 * Pure builders for what pipe hands to `sbatch`: the per-task shell script, the array dispatcher, and the sbatch flags
 * that express a Job's resources. No processes, no disk: tested directly.
 */
import type { Job } from './executor.js';

/** POSIX single-quote a word so the shell passes it through unchanged. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * A path for sbatch's `--output` with SLURM's own `%j`/`%A_%a` appended: a `%` of the path itself (a workspace under
 * `/data/50%/`) is doubled, else SLURM expands it (`%u` → the user name) and writes the file somewhere else. A
 * backslash turns every replacement off in SLURM, so such a path cannot be expressed: undefined.
 */
export function slurmOutputPattern(folder: string, pattern: string): string | undefined {
  if (folder.includes('\\')) return undefined;
  return `${folder.replace(/%/g, '%%')}/${pattern}`;
}

/** `--time` value: whole minutes rounded up (SLURM's granularity), as H:MM:SS. */
export function slurmTime(seconds: number): string {
  const mins = Math.max(1, Math.ceil(seconds / 60));
  const h = Math.floor(mins / 60);
  const m = mins % 60;
  return `${h}:${String(m).padStart(2, '0')}:00`;
}

/** `--mem` value in whole megabytes, rounded up. */
export function slurmMem(bytes: number): string {
  return `${Math.max(1, Math.ceil(bytes / (1024 * 1024)))}M`;
}

/** The sbatch flags for a job's resources and cluster options (not output/array/name flags). */
export function resourceFlags(job: Job): string[] {
  const r = job.resources;
  const flags = [`--cpus-per-task=${Math.max(1, Math.ceil(r.cpus))}`];
  if (r.memBytes > 0) flags.push(`--mem=${slurmMem(r.memBytes)}`);
  if (r.gpus > 0) flags.push(job.slurm.gpuFlag === 'gpus' ? `--gpus=${r.gpus}` : `--gres=gpu:${r.gpus}`);
  if (r.timeSec !== undefined && r.timeSec > 0) flags.push(`--time=${slurmTime(r.timeSec)}`);
  const s = job.slurm;
  if (s.partition) flags.push(`--partition=${s.partition}`);
  if (s.account) flags.push(`--account=${s.account}`);
  if (s.qos) flags.push(`--qos=${s.qos}`);
  if (s.constraint) flags.push(`--constraint=${s.constraint}`);
  for (const extra of s.extra ?? []) flags.push(extra);
  return flags;
}

/**
 * Jobs that may share one array submission: same resources and cluster options. The declaration name is part of
 * the key so one array holds the expansions of one foreach/matrix stage.
 */
export function arrayGroupKey(job: Job): string {
  return JSON.stringify([job.group, job.cwd, resourceFlags(job)]);
}

/**
 * The script one task runs on the compute node. It records the command's exit status in `markerFile` itself
 * (atomically), so success or a plain non-zero exit is known without accounting; a task killed by SLURM (memory,
 * time, node failure, scancel) never writes the marker, and its fate is read from SLURM instead.
 */
export function taskScript(job: Job, markerFile: string): string {
  const lines = [
    '#!/bin/bash',
    // JSON-quoted: a foreach item (part of the stage name) with a newline would otherwise start a line of its own,
    // run by bash as a command or read by sbatch as an `#SBATCH` option.
    `# pipe task: stage ${JSON.stringify(job.stage)} (key ${JSON.stringify(job.key)})`,
    `cd ${shellQuote(job.cwd)} || exit 97`,
  ];
  for (const [k, v] of Object.entries(job.env)) {
    // On SLURM the allocation decides the GPUs; never override the ids slurmd exported.
    if (k === 'CUDA_VISIBLE_DEVICES' && job.gpuIds.length === 0) continue;
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) continue;
    lines.push(`export ${k}=${shellQuote(v)}`);
  }
  lines.push(
    `export PIPE_SLURM_JOB="\${SLURM_ARRAY_JOB_ID:+\${SLURM_ARRAY_JOB_ID}_\${SLURM_ARRAY_TASK_ID}}"`,
    `export PIPE_SLURM_JOB="\${PIPE_SLURM_JOB:-$SLURM_JOB_ID}"`,
    `echo "::pipe::{\\"type\\":\\"slurm\\",\\"job\\":\\"$PIPE_SLURM_JOB\\",\\"host\\":\\"$(hostname)\\"}" >> ${shellQuote(job.logFile)}`,
    ...passEnvLines(job),
    `${job.passEnv ? 'env -i "${__pipe_env[@]}" ' : ''}${job.argv.map(shellQuote).join(' ')} >> ${shellQuote(job.logFile)} 2>&1 < /dev/null`,
    'rc=$?',
    `echo "$rc" > ${shellQuote(markerFile + '.tmp')} && mv -f ${shellQuote(markerFile + '.tmp')} ${shellQuote(markerFile)}`,
    'exit $rc',
    '',
  );
  return lines.join('\n');
}

/**
 * A hermetic job (`passEnv` set) keeps, of the task's environment on the node, only the pass-through names and its
 * own explicit variables: collected into `__pipe_env` and handed to `env -i`. Names only in the script, never values.
 */
function passEnvLines(job: Job): string[] {
  if (!job.passEnv) return [];
  const names = [...job.passEnv, ...Object.keys(job.env), 'PIPE_SLURM_JOB'].filter((n) => /^[A-Za-z_][A-Za-z0-9_]*\*?$/.test(n));
  return [
    '__pipe_env=()',
    'while IFS= read -r -d \'\' __kv; do',
    `  case "\${__kv%%=*}" in ${[...new Set(names)].join('|')}) __pipe_env+=("$__kv") ;; esac`,
    'done < <(env -0)',
  ];
}

/** The script an array job runs: task N executes the N-th task script. */
export function arrayScript(taskScripts: string[]): string {
  const cases = taskScripts.map((s, i) => `  ${i}) exec /bin/bash ${shellQuote(s)} ;;`);
  return ['#!/bin/bash', 'case "$SLURM_ARRAY_TASK_ID" in', ...cases, '  *) echo "pipe: no task $SLURM_ARRAY_TASK_ID" >&2; exit 98 ;;', 'esac', ''].join('\n');
}

/** Job names show up in `squeue`: keep them short, readable and free of spaces. */
export function jobName(job: Job): string {
  return `pipe:${job.group}`.replace(/[^A-Za-z0-9_.:@=,-]/g, '_').slice(0, 100);
}
