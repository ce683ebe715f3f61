/**
 * `${...}` must work unquoted everywhere, also inside flow collections (`outs: [models/${item}/]`,
 * `{mem: ${params.mem}}`), where YAML would read its braces and brackets as syntax. Before parsing (by either
 * parser), those four characters inside each `${...}` become private-use characters of the same length, so every
 * offset and column stays exact; scalar values and keys are mapped back after parsing. Both parsers see the same
 * protected text, which is what lets them agree.
 */
const EXPR_IN_TEXT = /\$\{[^{}\n]*\}/g;
const PROTECT: Record<string, string> = { '{': '\uE000', '}': '\uE001', '[': '\uE002', ']': '\uE003' };
const UNPROTECT: Record<string, string> = { '\uE000': '{', '\uE001': '}', '\uE002': '[', '\uE003': ']' };
const PROTECTED = /[\uE000-\uE003]/g;
const ANY_PROTECTED = /[\uE000-\uE003]/;

export function protectExprs(text: string): string {
  if (!text.includes('${')) return text;
  return text.replace(EXPR_IN_TEXT, (m) => '$' + m.slice(1).replace(/[{}[\]]/g, (c) => PROTECT[c]!));
}

export function unprotectExprs(s: string): string {
  return ANY_PROTECTED.test(s) ? s.replace(PROTECTED, (c) => UNPROTECT[c]!) : s;
}
