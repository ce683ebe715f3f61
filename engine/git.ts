/**
 * The little pipe asks of git: the commit a workspace is at (recorded with each experiment variant) and a file's
 * bytes at a revision (`pipe metrics diff --rev`). Read only; `git` is optional (absent: no commit recorded, and
 * `--rev` says it needs git).
 */
import { spawnSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';

export interface GitState {
  commit: string;
  /** Tracked files differ from the commit (the recorded result may not be reproducible from it alone). */
  dirty: boolean;
}

function git(cwd: string, args: string[], maxBuffer = 1024 * 1024): { ok: true; stdout: Buffer } | { ok: false; error: string } {
  const r = spawnSync('git', args, { cwd, maxBuffer, timeout: 30_000, env: { ...process.env, GIT_OPTIONAL_LOCKS: '0', LC_ALL: 'C' } });
  if (r.error) return { ok: false, error: (r.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'git is not installed' : r.error.message };
  if (r.status !== 0) return { ok: false, error: r.stderr.toString('utf8').trim().split('\n')[0] ?? `git exited with ${r.status}` };
  return { ok: true, stdout: r.stdout };
}

/** The commit `dir` is at and whether tracked files changed, or undefined outside a git repository. */
export function gitState(dir: string): GitState | undefined {
  const head = git(dir, ['rev-parse', '--verify', '-q', 'HEAD']);
  if (!head.ok) return undefined;
  const status = git(dir, ['status', '--porcelain', '--untracked-files=no'], 16 * 1024 * 1024);
  return { commit: head.stdout.toString('utf8').trim(), dirty: !status.ok || status.stdout.length > 0 };
}

/** The top folder of the git repository holding `dir`, or why there is none. */
export function gitTop(dir: string): { top: string } | { error: string } {
  const r = git(dir, ['rev-parse', '--show-toplevel']);
  return r.ok ? { top: r.stdout.toString('utf8').trim() } : { error: r.error };
}

/**
 * The bytes of `abs` (a file inside the repository at `top`) at revision `rev`; `missing` when the revision has no
 * such file. A revision that looks like an option is refused (it would reach git as one).
 */
export function gitShow(top: string, rev: string, abs: string, maxBytes: number): { bytes: Buffer } | { missing: true } | { error: string } {
  if (rev.startsWith('-') || rev.includes(':') || rev === '') return { error: `\`${rev}\` is not a git revision` };
  const verified = git(top, ['rev-parse', '--verify', '-q', `${rev}^{commit}`]);
  if (!verified.ok) return { error: `unknown git revision \`${rev}\`` };
  const object = `${verified.stdout.toString('utf8').trim()}:${relative(top, realFolder(abs)).split('\\').join('/')}`;
  const size = git(top, ['cat-file', '-s', object]);
  if (!size.ok) return { missing: true };
  if (Number(size.stdout.toString('utf8')) > maxBytes) return { error: `${object} is over ${maxBytes} bytes` };
  const show = git(top, ['cat-file', 'blob', object], maxBytes + 1);
  return show.ok ? { bytes: show.stdout } : { error: show.error };
}

/** `abs` with its folder's real path (git names the top folder by its real path). */
function realFolder(abs: string): string {
  try {
    return join(realpathSync(dirname(abs)), basename(abs));
  } catch {
    return abs;
  }
}
