/**
 * ~/.netrc (or $NETRC) lookup, as curl/wget read it: `machine <host> login <user> password <pass>` entries, a
 * `default` entry, and `macdef` blocks (skipped up to the next blank line).
 */
export interface NetrcEntry {
  login: string;
  password: string;
}

export function parseNetrc(text: string): { machines: Map<string, NetrcEntry>; fallback?: NetrcEntry } {
  const machines = new Map<string, NetrcEntry>();
  let fallback: NetrcEntry | undefined;
  // macdef bodies run until an empty line; drop them before tokenising.
  const cleaned = text.replace(/(^|\s)macdef\s+\S+[^\n]*\n[\s\S]*?(\n\s*\n|$)/g, '$1');
  const tokens = cleaned.split(/\s+/).filter(Boolean);
  let current: { host: string | null; entry: NetrcEntry } | null = null;
  const flush = (): void => {
    if (!current) return;
    if (current.host === null) fallback = current.entry;
    else if (!machines.has(current.host)) machines.set(current.host, current.entry);
  };
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t === 'machine') {
      flush();
      current = { host: tokens[++i] ?? '', entry: { login: '', password: '' } };
    } else if (t === 'default') {
      flush();
      current = { host: null, entry: { login: '', password: '' } };
    } else if (current && (t === 'login' || t === 'user')) current.entry.login = tokens[++i] ?? '';
    else if (current && (t === 'password' || t === 'passwd')) current.entry.password = tokens[++i] ?? '';
    else if (current && t === 'account') i++;
  }
  flush();
  return { machines, fallback };
}

export function lookupNetrc(text: string, host: string): NetrcEntry | undefined {
  const { machines, fallback } = parseNetrc(text);
  return machines.get(host) ?? fallback;
}
