/**
 * Checksum manifests in the format PhysioNet publishes (`SHA256SUMS.txt`, the output of `sha256sum`):
 * one `<64 hex>  <relative path>` per line (a `*` before the path marks binary mode).
 */
import { err, ok, type Result } from '../../engine/result.js';

export interface ManifestEntry {
  path: string;
  sha256: string;
}

export function parseChecksums(text: string, source: string): Result<ManifestEntry[], string> {
  const entries: ManifestEntry[] = [];
  const lines = text.split(/\r?\n/);
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line);
    if (!m) return err(`${source}:${i + 1}:1: expected "<sha256>  <path>", got ${JSON.stringify(line.slice(0, 80))}`);
    const path = m[2]!.replace(/^\.\//, '');
    const bad = unsafeRelativePath(path);
    if (bad) return err(`${source}:${i + 1}:67: unsafe path ${JSON.stringify(path)} (${bad})`);
    entries.push({ path, sha256: m[1]!.toLowerCase() });
  }
  return ok(entries);
}

/** Why a manifest/archive path would escape its target directory, or null if it is a safe relative path. */
export function unsafeRelativePath(path: string): string | null {
  if (path === '') return 'empty path';
  if (path.startsWith('/') || path.startsWith('\\') || /^[A-Za-z]:/.test(path)) return 'absolute path';
  if (path.split(/[/\\]/).includes('..')) return 'contains ".."';
  if (path.includes('\0')) return 'contains a NUL byte';
  return null;
}

/** Shell-style glob (`*` within a segment, `**` across, `?`) → RegExp, for the `include` filter. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
      if (glob[i + 1] === '/') i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}
