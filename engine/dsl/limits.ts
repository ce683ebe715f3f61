/**
 * Bounds on what loading a pipeline may consume, so a hostile or mistaken file is refused with a clear error instead
 * of exhausting memory, the stack or patience. One mechanism for all of them: an environment variable each, because
 * they must hold before the pipeline file (and so any setting written in it) has been read.
 *
 *   PIPE_MAX_FILE_BYTES   size of one pipeline, include or params file (`64M`, `1G`, or bytes)   default 64 MiB
 *   PIPE_MAX_YAML_DEPTH   nesting of mappings and lists in one YAML document                     default 100 (at most 500)
 *   PIPE_MAX_STAGES       stages after foreach/matrix expansion, all declarations together       default 200,000
 *   PIPE_MAX_VARIANTS     variants of one experiment (a grid's product, a list's length)       default 1,000
 *
 * The depth has a ceiling: the parsers and every step after them recurse once per level, and the yaml package's
 * composer exhausts the default stack at ~850 levels of flow lists; 500 leaves room for the steps after it.
 */
import { parseMem } from './units.js';

export interface Limits {
  fileBytes: number;
  yamlDepth: number;
  stages: number;
  variants: number;
}

export const LIMIT_VARS: Readonly<Record<keyof Limits, string>> = {
  fileBytes: 'PIPE_MAX_FILE_BYTES',
  yamlDepth: 'PIPE_MAX_YAML_DEPTH',
  stages: 'PIPE_MAX_STAGES',
  variants: 'PIPE_MAX_VARIANTS',
};

export const DEFAULT_LIMITS: Readonly<Limits> = { fileBytes: 64 * 1024 ** 2, yamlDepth: 100, stages: 200_000, variants: 1_000 };
const CEILING: Partial<Record<keyof Limits, number>> = { yamlDepth: 500 };

/** The limits in force (defaults, raised or lowered by the environment) and what was wrong with the variables. */
export function readLimits(env: NodeJS.ProcessEnv = process.env): { limits: Limits; problems: string[] } {
  const limits: Limits = { ...DEFAULT_LIMITS };
  const problems: string[] = [];
  for (const name of Object.keys(LIMIT_VARS) as Array<keyof Limits>) {
    const raw = env[LIMIT_VARS[name]];
    if (raw === undefined || raw.trim() === '') continue;
    const n = name === 'fileBytes' ? parseMem(raw) : /^\s*\d+\s*$/.test(raw) ? Number(raw) : undefined;
    const ceiling = CEILING[name];
    if (n === undefined || !Number.isSafeInteger(n) || n < 1) {
      problems.push(`${LIMIT_VARS[name]}=${raw} is not ${name === 'fileBytes' ? 'a size (bytes, or a number with K, M or G)' : 'a whole number ≥ 1'}`);
    } else if (ceiling !== undefined && n > ceiling) {
      problems.push(`${LIMIT_VARS[name]}=${raw} is above ${ceiling}, the most pipe can nest without exhausting its stack`);
    } else limits[name] = n;
  }
  return { limits, problems };
}

/** `(set PIPE_MAX_STAGES to raise it)`: the tail of every message about a bound. */
export function raiseHint(name: keyof Limits): string {
  return `set ${LIMIT_VARS[name]} to raise it`;
}

/** A byte count as people read it: `512 bytes`, `1.5 KiB`, `64 MiB`. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} bytes`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[u]}`;
}
