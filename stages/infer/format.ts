/**
 * The authors' predictions.csv (METHODS B.1), byte for byte in the parts that matter to readers: the row set's
 * metadata columns as they were, then `pred, prob, out, loss, class_probs`. Numbers are what pandas writes for
 * Python floats rounded to 4 dp (repr: "0.7421", "1.0", "-0.2505"); class_probs is the Python list repr
 * "[0.2579, 0.7421]"; `loss` (per-row cross-entropy) is left out entirely when no row has a label ≥ 0 (VinDr-PCXR),
 * and is empty for unlabelled rows otherwise.
 */
import { stringify } from 'csv-stringify/sync';

export const OUTPUT_COLUMNS = ['pred', 'prob', 'out', 'loss', 'class_probs'] as const;

/** Python's repr of round(x, 4). */
export function pyRound4(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  const r = Number(x.toFixed(4));
  if (r === 0) return Object.is(r, -0) || (x < 0 && r === 0) ? '-0.0' : '0.0';
  return Number.isInteger(r) ? r.toFixed(1) : String(r);
}

export interface RowPrediction {
  /** Raw logits [negative, positive]. */
  logits: [number, number];
  /** Softmax probabilities [negative, positive]. */
  probs: [number, number];
  /** 0/1, or −1 when unlabelled. */
  label: number;
}

export function predictionCells(p: RowPrediction, withLoss: boolean): string[] {
  const pred = p.probs[1] > p.probs[0] ? 1 : 0;
  const cells = [String(pred), pyRound4(p.probs[pred]!), pyRound4(p.logits[pred]!)];
  if (withLoss) cells.push(p.label >= 0 ? pyRound4(-Math.log(Math.max(p.probs[p.label]!, 1e-45))) : '');
  cells.push(`[${pyRound4(p.probs[0])}, ${pyRound4(p.probs[1])}]`);
  return cells;
}

/** The whole file: metadata columns (as given) + prediction columns. */
export function predictionsCsv(
  columns: readonly string[],
  rows: ReadonlyArray<Record<string, string>>,
  preds: readonly RowPrediction[],
): string {
  const withLoss = preds.some((p) => p.label >= 0);
  const header = [...columns, ...OUTPUT_COLUMNS.filter((c) => withLoss || c !== 'loss')];
  const body = rows.map((r, i) => [...columns.map((c) => r[c] ?? ''), ...predictionCells(preds[i]!, withLoss)]);
  return stringify([header, ...body]);
}
