/** Small file helpers for the stage runs: JSON reads and typed reads of `with:` values. */
import { readStageInputSync, StageError } from '../../../engine/stage-api.js';

export function readJson<T>(abs: string, shown: string, stage: string): T {
  let text: string;
  try {
    text = readStageInputSync(abs, 'file', shown).toString('utf8');
  } catch (e) {
    throw new StageError(`Stage ${stage}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new StageError(`Stage ${stage}: ${shown} is not valid JSON: ${(err as Error).message}`);
  }
}

/** A `with:` value as a finite number (interpolated params may arrive as strings). */
export function numberField(stage: string, field: string, value: unknown, opts: { integer?: boolean; min?: number; max?: number } = {}): number {
  const v = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  const ok = typeof v === 'number' && Number.isFinite(v) && (!opts.integer || Number.isInteger(v)) &&
    (opts.min === undefined || v >= opts.min) && (opts.max === undefined || v <= opts.max);
  if (!ok) {
    const range = [opts.min !== undefined ? `≥ ${opts.min}` : '', opts.max !== undefined ? `≤ ${opts.max}` : ''].filter(Boolean).join(' and ');
    throw new StageError(`Stage ${stage}, field with.${field}: expected ${opts.integer ? 'an integer' : 'a number'}${range ? ` ${range}` : ''}, got ${JSON.stringify(value)}.`);
  }
  return v as number;
}

export function stringField(stage: string, field: string, value: unknown): string {
  if (typeof value === 'number') return String(value);
  if (typeof value !== 'string' || value === '') throw new StageError(`Stage ${stage}, field with.${field}: expected a non-empty string, got ${JSON.stringify(value)}.`);
  return value;
}

export function stringList(stage: string, field: string, value: unknown): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new StageError(`Stage ${stage}, field with.${field}: expected a list, got ${JSON.stringify(value)}.`);
  return value.map((v, i) => stringField(stage, `${field}[${i}]`, v));
}
