import type { UpstreamRun } from '../../../engine/stage-api.js';

/** The report with every file read and every value formatted: what the HTML and Markdown renderers print. */
export interface ReportModel {
  title: string;
  intro?: string;
  sections: ResolvedSection[];
  provenance: Provenance;
}

export interface ResolvedNumber {
  label: string;
  value: string;
  /** e.g. `95% CI 28.19%–32.66%`. */
  interval?: string;
  /** `file#pointer` it came from. */
  source: string;
}

/** An SVG inlined after sanitising, or an image embedded as a data: URI (a PNG, or an SVG whose <style> must stay inside it). */
export type ResolvedFigure =
  | { kind: 'svg'; path: string; caption?: string; svg: string }
  | { kind: 'image'; path: string; caption?: string; dataUri: string };

export interface ResolvedTable {
  path: string;
  caption?: string;
  /** Header rows (usually one), each as wide as the table. */
  header: string[][];
  /** Per column: right-align (all non-empty cells are numbers). */
  numeric: boolean[];
  rows: string[][];
  /** Rows left out by maxRows. */
  omitted: number;
}

export interface ResolvedSection {
  title: string;
  /** Anchor id, unique in the page. */
  id: string;
  text?: string;
  numbers: ResolvedNumber[];
  figures: ResolvedFigure[];
  tables: ResolvedTable[];
}

export interface GeneratedAt {
  /** ISO 8601. */
  at: string;
  /** Where the date comes from, in words (`SOURCE_DATE_EPOCH`, `the end of the newest upstream run (fig)`). */
  from: string;
}

export interface Provenance {
  pipelineFile: string;
  pipelineName: string;
  pipeVersion: string;
  stage: string;
  key: string;
  /** Derived from the inputs (see run.ts reportDate); absent when nothing dates them. */
  generatedAt?: GeneratedAt;
  upstream: ReadonlyArray<UpstreamRun>;
  /** Input path → content hash, sorted by path. */
  inputs: Array<[string, string]>;
}

/** Anchor ids from titles: lowercase words joined by -, made unique with a counter. */
export function slugger(): (title: string) => string {
  const used = new Map<string, number>();
  return (title) => {
    const base = title.toLowerCase().normalize('NFKD').replace(/[^\w\s-]/g, '').trim().replace(/[\s_]+/g, '-') || 'section';
    const n = used.get(base) ?? 0;
    used.set(base, n + 1);
    return n === 0 ? base : `${base}-${n + 1}`;
  };
}
