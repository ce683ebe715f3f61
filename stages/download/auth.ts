/**
 * Credentials for a host: environment variables named in `with.auth` first, then ~/.netrc (or $NETRC). Only the
 * variable names ever appear in `with:` (and so in the lock file, run records and the stage key); the values are
 * read here, turned into an Authorization header and never logged.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { lookupNetrc } from './netrc.js';

export interface AuthSpec {
  user_env?: string;
  password_env?: string;
  /** Consult the netrc file when the variables are unset (default true). */
  netrc?: boolean;
}

export interface ResolvedAuth {
  /** `Basic …` header value, or undefined when no credentials were found. */
  header?: string;
  /** Where the credentials came from, for messages ("environment variables PHYSIONET_USER/PHYSIONET_PASSWORD"). */
  source: string;
  /** What the user can do about a 401, in words. */
  hint: string;
}

export const netrcPath = (env: NodeJS.ProcessEnv = process.env): string => env['NETRC'] || join(homedir(), '.netrc');

/**
 * `hostLabel` is how the host appears in the hint: the host itself, or e.g. "<the host of $CHEXPERT_URL>" when the
 * URL is a secret whose host must not be printed.
 */
export function resolveAuth(spec: AuthSpec | undefined, host: string, env: NodeJS.ProcessEnv = process.env, hostLabel: string = host): ResolvedAuth {
  const file = netrcPath(env);
  const vars = spec?.user_env || spec?.password_env ? `${spec?.user_env ?? '?'} and ${spec?.password_env ?? '?'}` : null;
  const useNetrc = spec?.netrc !== false;
  const hint = [
    vars ? `set the environment variables ${vars}` : null,
    useNetrc ? `add "machine ${hostLabel} login <user> password <password>" to ${file}` : null,
  ]
    .filter(Boolean)
    .join(', or ');
  const basic = (u: string, p: string): string => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
  const user = spec?.user_env ? env[spec.user_env] : undefined;
  const pass = spec?.password_env ? env[spec.password_env] : undefined;
  if (user && pass !== undefined) return { header: basic(user, pass), source: `environment variables ${vars}`, hint };
  if (useNetrc && existsSync(file)) {
    const entry = lookupNetrc(readFileSync(file, 'utf8'), host);
    if (entry && entry.login) return { header: basic(entry.login, entry.password), source: `netrc file ${file}`, hint };
  }
  return { source: 'no credentials', hint: hint || 'configure with.auth' };
}
