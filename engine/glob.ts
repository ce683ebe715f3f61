/**
 * Globs, one implementation for the whole engine: stage names for targets and `--force` (`train@*`,
 * `fpr@model=?adchest*`), and path segments for `include:` patterns (`paper/*.yaml`, where `*` stops at `/`).
 */

export function isGlob(s: string): boolean {
  return /[*?[]/.test(s);
}

/** `*`, `?` and `[...]`/`[!...]` classes; with `pathSegment`, `*` and `?` never match `/`. */
export function globToRegExp(glob: string, opts: { pathSegment?: boolean } = {}): RegExp {
  const any = opts.pathSegment ? '[^/]*' : '.*';
  const one = opts.pathSegment ? '[^/]' : '.';
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') re += any;
    else if (c === '?') re += one;
    else if (c === '[') {
      const close = glob.indexOf(']', i + 1);
      if (close < 0) re += '\\[';
      else {
        let cls = glob.slice(i + 1, close).replace(/\\/g, '\\\\');
        if (cls.startsWith('!')) cls = `^${cls.slice(1)}`;
        re += `[${cls}]`;
        i = close;
      }
    } else re += c.replace(/[.+^${}()|\\\]]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** A predicate matching any of the patterns (exact names or globs). */
export function matcher(patterns: readonly string[]): (name: string) => boolean {
  const exact = new Set(patterns.filter((p) => !isGlob(p)));
  const globs = patterns.filter(isGlob).map((p) => globToRegExp(p));
  return (name) => exact.has(name) || globs.some((g) => g.test(name));
}
