/** `mem:` and `time:` values as users write them (SLURM style) → bytes and seconds. */

const MEM_UNITS: Record<string, number> = { '': 1, B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/**
 * `8G`, `512M`, `1.5G`, `8GB`, `8GiB`, `1024` (bytes) → bytes. Units are binary (K = 1024), as SLURM reads them.
 * Returns undefined for anything else.
 */
export function parseMem(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? Math.round(v) : undefined;
  if (typeof v !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(v);
  if (!m) return undefined;
  const unit = m[2]!.toUpperCase();
  return Math.round(Number(m[1]) * MEM_UNITS[unit]!);
}

/**
 * `01:30:00` (H:MM:SS), `30:00` (M:SS), `2-12:00:00` (D-HH:MM:SS), `90m`, `2h`, `1h30m`, `45s`, `1d`, or a number
 * of seconds → seconds. Returns undefined for anything else (and for 0 or less).
 */
export function parseTime(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v > 0 ? Math.round(v) : undefined;
  if (typeof v !== 'string') return undefined;
  const s = v.trim();
  let m = /^(?:(\d+)-)?(\d+)(?::(\d{1,2}))?(?::(\d{1,2}))?$/.exec(s);
  if (m && (m[3] !== undefined || m[1] !== undefined)) {
    const days = Number(m[1] ?? 0);
    const parts = [m[2], m[3], m[4]].filter((x): x is string => x !== undefined).map(Number);
    // D-H, D-H:M, D-H:M:S, H:M:S, M:S
    let sec: number;
    if (m[1] !== undefined) sec = (parts[0] ?? 0) * 3600 + (parts[1] ?? 0) * 60 + (parts[2] ?? 0);
    else if (parts.length === 3) sec = parts[0]! * 3600 + parts[1]! * 60 + parts[2]!;
    else sec = parts[0]! * 60 + parts[1]!;
    const total = days * 86400 + sec;
    return total > 0 ? total : undefined;
  }
  if (/^\d+(\.\d+)?$/.test(s)) {
    const n = Number(s);
    return n > 0 ? Math.round(n) : undefined;
  }
  m = /^(?:(\d+(?:\.\d+)?)d)?\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m(?:in)?)?\s*(?:(\d+(?:\.\d+)?)s)?$/i.exec(s);
  if (m && s !== '') {
    const total = Number(m[1] ?? 0) * 86400 + Number(m[2] ?? 0) * 3600 + Number(m[3] ?? 0) * 60 + Number(m[4] ?? 0);
    return total > 0 ? Math.round(total) : undefined;
  }
  return undefined;
}
