/**
 * POSIX shell quoting for values interpolated into `cmd`: a param holding `; rm -rf ~` must reach the program as one
 * argument, never as shell syntax.
 */

/** Characters that never need quoting in any position of a POSIX shell word. */
const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** `value` as one shell word: unchanged when safe, else in single quotes (a `'` becomes `'\''`). */
export function shellQuote(value: string): string {
  if (value !== '' && SAFE.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
