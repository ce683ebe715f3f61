/**
 * A bounded, streaming .xlsx reader for the review workbook. The whole-workbook object model (exceljs `readFile`) took
 * 3.4 GB for six large sheets where the kind declares 512 MB; here the zip is opened for random access (yauzl), only
 * the parts the review needs are decompressed — workbook, relationships, shared strings, styles, and the sheets up to
 * the last one read — each streamed through a SAX parser (saxes) with its decompressed bytes counted, and only the
 * cell values the review keeps are held. Every bound fails with one paragraph naming the limit and how to raise it.
 *
 * Cell values follow what pandas' `read_excel` (openpyxl) sees: shared and inline strings (rich-text runs joined,
 * phonetic runs left out, `_xHHHH_` escapes decoded), numbers, booleans, cached formula results, error cells as
 * missing, and numbers in a date format as dates.
 */
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { SaxesParser, type SaxesTagPlain } from 'saxes';
import yauzl from 'yauzl';

/** Bounds of one read (the review derives them from its memory budget). */
export interface XlsxLimits {
  /** Size of the .xlsx file itself. */
  maxFileBytes: number;
  /** Sum of the decompressed bytes of every part read (counted as they stream, so a lying zip header cannot pass). */
  maxExpandedBytes: number;
  /** Sheets in the workbook. */
  maxSheets: number;
  /** Cells held: for each sheet read, its header cells plus data rows × header columns. */
  maxCells: number;
}

/** What a limit error says: which bound, its value, what was found, and how to raise it. */
export class XlsxLimitError extends Error {
  constructor(
    readonly limit: keyof XlsxLimits,
    readonly value: number,
    readonly found: string,
  ) {
    super(`${found} (limit ${limit} = ${value})`);
  }
}

/** A raw cell as read: text, number, boolean, date, or missing. */
export type RawCell = string | number | boolean | Date | null;

export interface RawSheet {
  name: string;
  /**
   * Non-empty rows by Excel row number (1-based); each maps a 1-based column number to its value. Data rows hold only
   * the columns that have a cell in row 1 (the header), the only ones the review reads.
   */
  rows: Map<number, Map<number, RawCell>>;
}

export interface RawWorkbook {
  /** Every sheet name, in workbook order (position = index). */
  sheetNames: string[];
  /** The sheets read (the first `sheetsToRead`), in workbook order. */
  sheets: RawSheet[];
}

/** Built-in number formats that are dates/times (ECMA-376 18.8.30 and the locale ids Excel writes). */
const BUILTIN_DATE_FORMATS = new Set([14, 15, 16, 17, 18, 19, 20, 21, 22, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 45, 46, 47, 50, 51, 52, 53, 54, 55, 56, 57, 58]);

/** A custom number format shows a date when, outside quotes and [..] sections, it has a date or time letter. */
export function isDateFormat(code: string): boolean {
  const bare = code.split(';')[0]!.replace(/\[[^\]]*]/g, '').replace(/"[^"]*"/g, '').replace(/\\./g, '');
  return /[ymdhs]/i.test(bare);
}

/** Excel's `_xHHHH_` escape of characters XML cannot hold (e.g. `_x000D_` for a carriage return), as openpyxl decodes. */
export function decodeXlsxEscapes(s: string): string {
  return s.includes('_x') ? s.replace(/_x([0-9A-Fa-f]{4})_/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))) : s;
}

/** Column number of a cell reference ("AB12" → 28); null when the reference has no letters. */
function columnOf(ref: string): number | null {
  let n = 0;
  let i = 0;
  for (; i < ref.length; i++) {
    const c = ref.charCodeAt(i);
    if (c >= 65 && c <= 90) n = n * 26 + (c - 64);
    else if (c >= 97 && c <= 122) n = n * 26 + (c - 96);
    else break;
  }
  return i === 0 ? null : n;
}

/** Excel serial date → Date (1900 system with its phantom 29 Feb 1900, or the 1904 system). */
function excelDate(serial: number, date1904: boolean): Date {
  const days = date1904 ? serial + 1462 : serial < 61 ? serial + 1 : serial;
  return new Date(Math.round((days - 25569) * 86400000));
}

class ZipReader {
  private expanded = 0;
  private constructor(
    private readonly zip: yauzl.ZipFile,
    readonly entries: Map<string, yauzl.Entry>,
    private readonly limits: XlsxLimits,
  ) {}

  static async open(file: string, limits: XlsxLimits): Promise<ZipReader> {
    const zip = await new Promise<yauzl.ZipFile>((resolve, reject) =>
      yauzl.open(file, { lazyEntries: true, autoClose: false, validateEntrySizes: true }, (e, z) =>
        e || !z ? reject(e ?? new Error('not a zip archive')) : resolve(z),
      ),
    );
    const entries = new Map<string, yauzl.Entry>();
    try {
      await new Promise<void>((resolve, reject) => {
        zip.on('entry', (e: yauzl.Entry) => {
          entries.set(e.fileName.replace(/\\/g, '/'), e);
          zip.readEntry();
        });
        zip.once('end', () => resolve());
        zip.once('error', reject);
        zip.readEntry();
      });
    } catch (e) {
      zip.close();
      throw e;
    }
    return new ZipReader(zip, entries, limits);
  }

  close(): void {
    this.zip.close();
  }

  /** Streams one part through a SAX parser, counting its decompressed bytes against the limit. */
  async parse(name: string, on: (parser: SaxesParser) => void): Promise<void> {
    const entry = this.entries.get(name);
    if (!entry) throw new Error(`the part ${name} is missing`);
    this.checkExpanded(entry.uncompressedSize, name, false); // refuse early on the declared size
    const stream = await new Promise<Readable>((resolve, reject) =>
      this.zip.openReadStream(entry, (e, s) => (e || !s ? reject(e ?? new Error(`cannot open ${name}`)) : resolve(s))),
    );
    const parser = new SaxesParser();
    on(parser);
    let failure: Error | undefined;
    parser.on('error', (e) => {
      failure ??= new Error(`${name} is not well-formed XML: ${e.message}`);
    });
    try {
      // A TextDecoder in stream mode keeps a UTF-8 sequence split across chunks intact.
      const decoder = new TextDecoder('utf-8');
      for await (const chunk of stream) {
        const buf = chunk as Buffer;
        this.checkExpanded(buf.length, name); // and on the bytes actually produced
        parser.write(decoder.decode(buf, { stream: true }));
        if (failure) throw failure;
      }
      parser.write(decoder.decode());
      parser.close();
      if (failure) throw failure;
    } catch (e) {
      if (e instanceof XlsxLimitError || e === failure) throw e;
      throw new Error(`${name}: ${(e as Error).message}`); // e.g. yauzl: the part inflates past its declared size
    } finally {
      stream.destroy();
    }
  }

  /** Refuses when `bytes` more would pass the limit; counts them unless they are only a header's promise. */
  private checkExpanded(bytes: number, name: string, count = true): void {
    if (this.expanded + bytes > this.limits.maxExpandedBytes) {
      throw new XlsxLimitError('maxExpandedBytes', this.limits.maxExpandedBytes,
        `the workbook expands to more than ${this.limits.maxExpandedBytes} bytes of XML (reached while reading ${name})`);
    }
    if (count) this.expanded += bytes;
  }
}

/** Text of the <t> elements of a string item (<si> or <is>), rich-text runs joined, phonetic runs (<rPh>) left out. */
function collectText(parser: SaxesParser, item: string, done: (text: string | null) => void): void {
  let depthInItem = 0;
  let inT = false;
  let inPhonetic = false;
  let text: string | null = null;
  parser.on('opentag', (tag) => {
    const name = local(tag);
    if (name === item) {
      depthInItem = 1;
      text = null;
    } else if (depthInItem > 0) {
      if (name === 'rPh') inPhonetic = true;
      else if (name === 't' && !inPhonetic) {
        inT = true;
        text ??= '';
      }
    }
  });
  parser.on('text', (t) => {
    if (inT) text += t;
  });
  parser.on('closetag', (tag) => {
    const name = local(tag);
    if (name === 't') inT = false;
    else if (name === 'rPh') inPhonetic = false;
    else if (name === item && depthInItem > 0) {
      depthInItem = 0;
      done(text === null ? null : decodeXlsxEscapes(text));
    }
  });
}

/** Element name without its namespace prefix (some writers use "x:row"). saxes holds one handler per event. */
const local = (tag: { name: string }): string => {
  const i = tag.name.indexOf(':');
  return i < 0 ? tag.name : tag.name.slice(i + 1);
};
const attr = (tag: SaxesTagPlain, name: string): string | undefined => tag.attributes[name] as string | undefined;
/** The relationship id of a <sheet> (r:id, whatever the prefix). */
const relId = (tag: SaxesTagPlain): string =>
  (Object.entries(tag.attributes).find(([k]) => k.endsWith(':id'))?.[1] as string | undefined) ?? '';

/** Resolves a relationship target against xl/ ("worksheets/sheet1.xml" or "/xl/worksheets/sheet1.xml"). */
function partName(target: string): string {
  if (target.startsWith('/')) return target.slice(1);
  const parts: string[] = ['xl'];
  for (const p of target.split('/')) {
    if (p === '..') parts.pop();
    else if (p !== '.' && p !== '') parts.push(p);
  }
  return parts.join('/');
}

/**
 * Reads the sheet list and the first `sheetsToRead` sheets of an .xlsx file. `onSheetRow(sheet index, row count)` may
 * throw to stop early. Errors: XlsxLimitError for a bound, Error for a file that is not a readable workbook.
 */
export async function readXlsx(file: string, limits: XlsxLimits, sheetsToRead: number): Promise<RawWorkbook> {
  const size = (await stat(file)).size;
  if (size > limits.maxFileBytes) {
    throw new XlsxLimitError('maxFileBytes', limits.maxFileBytes, `the file is ${size} bytes`);
  }
  const zip = await ZipReader.open(file, limits);
  try {
    // Workbook: sheet names in order, their relationship ids, the date system.
    const sheetRefs: Array<{ name: string; rid: string }> = [];
    let date1904 = false;
    await zip.parse('xl/workbook.xml', (p) =>
      p.on('opentag', (tag) => {
        if (local(tag) === 'sheet') {
          sheetRefs.push({ name: attr(tag, 'name') ?? '', rid: relId(tag) });
          if (sheetRefs.length > limits.maxSheets) {
            throw new XlsxLimitError('maxSheets', limits.maxSheets, `the workbook has more than ${limits.maxSheets} sheets`);
          }
        } else if (local(tag) === 'workbookPr') {
          const v = attr(tag, 'date1904');
          date1904 = v === '1' || v === 'true';
        }
      }),
    );
    const targets = new Map<string, string>();
    await zip.parse('xl/_rels/workbook.xml.rels', (p) =>
      p.on('opentag', (tag) => {
        if (local(tag) === 'Relationship') targets.set(attr(tag, 'Id') ?? '', attr(tag, 'Target') ?? '');
      }),
    );

    // Shared strings (optional part).
    const shared: Array<string | null> = [];
    if (zip.entries.has('xl/sharedStrings.xml')) {
      await zip.parse('xl/sharedStrings.xml', (p) => collectText(p, 'si', (t) => shared.push(t)));
    }

    // Styles: which cell formats show dates.
    const dateStyles: boolean[] = [];
    if (zip.entries.has('xl/styles.xml')) {
      const customFormats = new Map<number, string>();
      let inCellXfs = false;
      const xfFormats: number[] = [];
      await zip.parse('xl/styles.xml', (p) => {
        p.on('opentag', (tag) => {
          const name = local(tag);
          if (name === 'numFmt') customFormats.set(Number(attr(tag, 'numFmtId')), attr(tag, 'formatCode') ?? '');
          else if (name === 'cellXfs') inCellXfs = true;
          else if (name === 'xf' && inCellXfs) xfFormats.push(Number(attr(tag, 'numFmtId') ?? 0));
        });
        p.on('closetag', (tag) => {
          if (local(tag) === 'cellXfs') inCellXfs = false;
        });
      });
      for (const id of xfFormats) {
        const custom = customFormats.get(id);
        dateStyles.push(custom !== undefined ? isDateFormat(custom) : BUILTIN_DATE_FORMATS.has(id));
      }
    }

    const sheets: RawSheet[] = [];
    let cells = 0;
    for (const ref of sheetRefs.slice(0, sheetsToRead)) {
      const target = targets.get(ref.rid);
      if (target === undefined) throw new Error(`the sheet "${ref.name}" has no relationship ${ref.rid}`);
      const rows = new Map<number, Map<number, RawCell>>();
      const header = new Set<number>(); // columns of row 1: only their cells are held in data rows
      let rowNumber = 0;
      let row: Map<number, RawCell> | null = null;
      let col = 0;
      let cell: { type: string; style: number; value: string | null; inline: string | null } | null = null;
      let inV = false;
      // Inline strings (<is>): <t> text outside phonetic runs.
      let inIs = false;
      let inT = false;
      let inPhonetic = false;
      let isText: string | null = null;
      await zip.parse(partName(target), (p) => {
        p.on('opentag', (tag) => {
          const name = local(tag);
          if (name === 'row') {
            const r = Number(attr(tag, 'r'));
            rowNumber = Number.isInteger(r) && r > 0 ? r : rowNumber + 1;
            row = new Map();
            col = 0;
          } else if (name === 'c') {
            const ref = attr(tag, 'r');
            const c = ref === undefined ? null : columnOf(ref);
            col = c ?? col + 1;
            cell = { type: attr(tag, 't') ?? 'n', style: Number(attr(tag, 's') ?? 0), value: null, inline: null };
          } else if (name === 'v' && cell) {
            inV = true;
            cell.value = '';
          } else if (name === 'is') {
            inIs = true;
            isText = null;
          } else if (name === 'rPh') {
            inPhonetic = true;
          } else if (name === 't' && inIs && !inPhonetic) {
            inT = true;
            isText ??= '';
          }
        });
        p.on('text', (t) => {
          if (inV && cell) cell.value += t;
          else if (inT) isText += t;
        });
        p.on('closetag', (tag) => {
          const name = local(tag);
          if (name === 'v') inV = false;
          else if (name === 't') inT = false;
          else if (name === 'rPh') inPhonetic = false;
          else if (name === 'is') {
            inIs = false;
            if (cell) cell.inline = isText === null ? null : decodeXlsxEscapes(isText);
          } else if (name === 'c' && cell && row) {
            if (rowNumber === 1 || header.has(col)) {
              const value = cellValue(cell, shared, dateStyles, date1904);
              if (value !== null) row.set(col, value);
            }
            cell = null;
          } else if (name === 'row' && row) {
            if (row.size > 0) {
              if (rowNumber === 1) for (const c of row.keys()) header.add(c);
              cells += rowNumber === 1 ? row.size : header.size;
              if (cells > limits.maxCells) {
                throw new XlsxLimitError('maxCells', limits.maxCells,
                  `the sheets read hold more than ${limits.maxCells} cells (reached at sheet "${ref.name}", row ${rowNumber})`);
              }
              rows.set(rowNumber, row);
            }
            row = null;
          }
        });
      });
      sheets.push({ name: ref.name, rows });
    }
    return { sheetNames: sheetRefs.map((s) => s.name), sheets };
  } finally {
    zip.close();
  }
}

function cellValue(
  cell: { type: string; style: number; value: string | null; inline: string | null },
  shared: ReadonlyArray<string | null>,
  dateStyles: readonly boolean[],
  date1904: boolean,
): RawCell {
  const v = cell.value;
  switch (cell.type) {
    case 's': {
      const i = Number(v);
      return Number.isInteger(i) && i >= 0 && i < shared.length ? shared[i]! : null;
    }
    case 'inlineStr':
      return cell.inline;
    case 'str':
      return v === null ? null : decodeXlsxEscapes(v);
    case 'b':
      return v === null ? null : v.trim() === '1' || v.trim() === 'true';
    case 'e':
      return null; // #N/A, #REF!…: pandas reads error cells as missing
    case 'd':
      return v === null || v === '' ? null : new Date(v);
    default: {
      if (v === null || v.trim() === '') return null;
      const n = Number(v);
      if (!Number.isFinite(n)) return null;
      return dateStyles[cell.style] ? excelDate(n, date1904) : n;
    }
  }
}
