import { parsePercentage } from './percentage.js';

export type ModalitySharesResult = { ok: true; value: Record<string, number> } | { ok: false; part: string };

/**
 * METHODS A.6: "CT (83.3%), MRI (17.7%)" → { CT: 0.833, MRI: 0.177 } (not renormalised). Text before a ": " is
 * dropped, as the authors do. A part without a percentage makes their code raise; here it is an error result.
 */
export function parseModalityShares(text: string): ModalitySharesResult {
  const body = text.includes(': ') ? text.split(': ').at(-1)! : text;
  const value: Record<string, number> = {};
  for (const part of body.split(', ')) {
    const pct = parsePercentage(part);
    if (pct === undefined || pct === null) return { ok: false, part };
    value[part.split(' (')[0]!.trim()] = pct / 100;
  }
  return { ok: true, value };
}

/** Tokens of an `Imaging Modality(ies)` cell ("CT, MRI" → ["CT", "MRI"]); exact-token matching uses these. */
export function modalityTokens(text: string | null): string[] {
  return text === null ? [] : text.split(', ');
}

/** A.6: the share of modality `m` in a dataset: the parsed map value, else 1 / number of modality tokens. */
export function modalityShare(shares: Record<string, number> | null, modalityText: string | null, m: string): number {
  if (shares && Object.hasOwn(shares, m)) return shares[m]!;
  return 1 / modalityTokens(modalityText).length;
}
