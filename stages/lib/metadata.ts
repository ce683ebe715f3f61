/**
 * Per-dataset metadata in one shape (METHODS C.2): read a dataset root in its published layout and return one row
 * per image with the shared columns (dset, image_id, patient_id, path, age, age_years, sex, view, Has Finding,
 * Cardiomegaly) plus the dataset's label columns. Values are strings, as they will appear in CSVs.
 *
 * Expected problems (a missing CSV, a bad header) are returned as `Result` errors naming the file, so the stage
 * can report them in one paragraph.
 */
import { existsSync, lstatSync, realpathSync } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { parse } from 'csv-parse/sync';
import { err, ok, type Result } from '../../engine/result.js';

export const METADATA_LAYOUTS = ['vindr_cxr', 'vindr_pcxr', 'nih', 'padchest', 'chexpert'] as const;
export type MetadataLayout = (typeof METADATA_LAYOUTS)[number];

/** Dataset names the evaluation uses (B.1). */
export const DSET_NAME: Record<MetadataLayout, string> = {
  vindr_cxr: 'vindr_cxr',
  vindr_pcxr: 'vindr_pcxr',
  nih: 'nih_cxr18',
  padchest: 'padchest',
  chexpert: 'chexbert',
};

export type MetaRow = Record<string, string>;
export interface DatasetMetadata {
  rows: MetaRow[];
  columns: string[];
  /** Rows dropped and why (e.g. "view not PA": 12), for the stage log. */
  dropped: Record<string, number>;
  /** Absolute path of each row's image, inside the dataset root (checked: see DatasetPaths). */
  files: string[];
}

/** Where a row came from: the metadata file and the line its record ends on. */
export interface RowSource {
  file: string;
  line: number;
}

/**
 * Dataset-relative image paths, resolved so that none leaves its dataset root — `../` or an absolute path in a
 * metadata table, or a symlink inside the dataset pointing elsewhere (realpath of the deepest existing part), is
 * refused with the metadata file and line named. Reading outside the root would make a stage depend on files its key
 * does not cover (a change there would go unnoticed), and read what the pipeline author never declared.
 */
export class DatasetPaths {
  private readonly realRoot: string;
  private readonly realDirs = new Map<string, string>();

  constructor(readonly root: string) {
    this.realRoot = existsSync(root) ? realpathSync(root) : resolve(root);
  }

  private inside(p: string, base: string): boolean {
    const r = relative(base, p);
    return r === '' || (!r.startsWith(`..${sep}`) && r !== '..' && !isAbsolute(r));
  }

  /** realpath of a directory that may not exist: its deepest existing ancestor's realpath plus the rest. */
  private realDir(dir: string): string {
    let real = this.realDirs.get(dir);
    if (real === undefined) {
      try {
        real = realpathSync(dir);
      } catch {
        const parent = dirname(dir);
        real = parent === dir ? dir : join(this.realDir(parent), basename(dir));
      }
      this.realDirs.set(dir, real);
    }
    return real;
  }

  /** The image's absolute path (symlinks resolved), or why it is refused. */
  resolve(rel: string): Result<string, string> {
    if (rel === '' || rel.includes('\0')) return err(`image path ${JSON.stringify(rel)} is not a file path`);
    if (isAbsolute(rel)) return err(`image path "${rel}" is absolute; paths in the metadata must be relative to the dataset root`);
    const abs = resolve(this.root, rel);
    if (!this.inside(abs, resolve(this.root))) return err(`image path "${rel}" resolves outside the dataset root (to ${abs})`);
    let real = join(this.realDir(dirname(abs)), basename(abs));
    try {
      if (lstatSync(real).isSymbolicLink()) real = realpathSync(real);
    } catch {
      // Missing (or a dangling link): the caller reports missing files; what exists is checked below either way.
    }
    if (!this.inside(real, this.realRoot))
      return err(`image path "${rel}" resolves outside the dataset root through a symbolic link (to ${real})`);
    return ok(real);
  }

  /** Every path resolved, or the first refusal as "<file> line <n>: …". */
  resolveAll(paths: readonly string[], sources: readonly RowSource[]): Result<string[], string> {
    const out: string[] = new Array(paths.length);
    for (let i = 0; i < paths.length; i++) {
      const r = this.resolve(paths[i]!);
      if (!r.ok) {
        const at = sources[i];
        return err(`${at ? `${at.file} line ${at.line}: ` : ''}${r.error}; every image must lie inside the dataset`);
      }
      out[i] = r.value;
    }
    return ok(out);
  }
}

/**
 * The age rule of B.2: "045Y" → 45 (missing above 125), "010M" → floor(10/12) = 0, "020D" → 20/365 (a float);
 * text that is not an integer → missing. Plain integers are taken as years (newer NIH CSVs; the original crashes).
 */
export function parseAgeString(text: string | undefined | null): number | null {
  const t = (text ?? '').trim();
  if (t === '') return null;
  const int = (s: string): number | null => (/^[+-]?\d+$/.test(s) ? Number.parseInt(s, 10) : null);
  if (t.includes('Y')) {
    const y = int(t.replace(/Y/g, ''));
    return y === null || y > 125 ? null : y;
  }
  if (t.includes('M')) {
    const m = int(t.replace(/M/g, ''));
    return m === null ? null : Math.floor(m / 12);
  }
  if (t.includes('D')) {
    const d = int(t.replace(/D/g, ''));
    return d === null ? null : d / 365;
  }
  const y = int(t);
  return y === null || y > 125 ? null : y;
}

const fmt = (n: number | null): string => (n === null ? '' : String(n));

interface Csv {
  header: string[];
  records: string[][];
  /** Where each record came from (the line it ends on). */
  sources: RowSource[];
}

/** Parsed CSV records with the line each ends on (for errors that name a row). */
export function parseCsvLines(bytes: Buffer | string, file: string): { records: string[][]; sources: RowSource[] } {
  const parsed = parse(bytes, { relax_column_count: true, skip_empty_lines: true, bom: true, info: true }) as unknown as Array<{
    record: string[];
    info: { lines: number };
  }>;
  return { records: parsed.map((p) => p.record), sources: parsed.map((p) => ({ file, line: p.info.lines })) };
}

/** Default bound on a metadata table's bytes (unzipped): the biggest real one, PadChest's, is ~60 MB unzipped. */
export const DEFAULT_MAX_TABLE_BYTES = 1024 * 1024 * 1024;

/**
 * The bytes of a metadata table, or its gzipped copy unzipped, refused past `maxBytes` (a table is held in memory
 * whole). A gzipped table is inflated only up to the bound, so a gzip bomb in a downloaded dataset stops there.
 */
export async function readTableBytes(file: string, maxBytes: number, gzipped = false): Promise<Result<Buffer, string>> {
  const tooLarge = () =>
    err(`${file} is more than ${maxBytes} bytes${gzipped ? ' unzipped' : ''}, the limit for a metadata table (it is held in memory); raise with.max_metadata_mb to read it`);
  const { size } = await stat(file);
  if (!gzipped) return size > maxBytes ? tooLarge() : ok(await readFile(file));
  try {
    return ok(gunzipSync(await readFile(file), { maxOutputLength: maxBytes }));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return tooLarge();
    throw e;
  }
}

/** Read a CSV, or its gzipped copy (`file.gz`, as PadChest distributes its table) when only that exists. */
async function readCsv(file: string, maxBytes: number): Promise<Result<Csv, string>> {
  const gz = `${file}.gz`;
  if (!existsSync(file) && !existsSync(gz)) return err(`${file}: file not found`);
  try {
    const read = existsSync(file) ? await readTableBytes(file, maxBytes) : await readTableBytes(gz, maxBytes, true);
    if (!read.ok) return read;
    const bytes = read.value;
    const { records, sources } = parseCsvLines(bytes, existsSync(file) ? file : gz);
    const [header, ...rest] = records;
    if (!header) return err(`${file}: empty CSV`);
    return ok({ header, records: rest, sources: sources.slice(1) });
  } catch (e) {
    return err(`${file}: not valid CSV (${(e as Error).message})`);
  }
}

function requireColumns(file: string, header: string[], cols: string[]): string | null {
  const missing = cols.filter((c) => !header.includes(c));
  return missing.length ? `${file}: missing column(s) ${missing.map((c) => JSON.stringify(c)).join(', ')}` : null;
}

const toObjects = (header: string[], records: string[][]): MetaRow[] =>
  records.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i] ?? ''])));

// ---- DICOM header tags (VinDr keeps sex/age only in the DICOM files) --------------------------------------------

/** dicom-parser is a UMD bundle: loaded through require, typed by the package's own index.d.ts. */
const dicomParser = createRequire(import.meta.url)('dicom-parser') as typeof import('dicom-parser');

export interface DicomDemographics {
  sex: string;
  age: string;
  size: string;
  weight: string;
}

/** Header bytes read first: real DICOM headers are a few kB, the pixel data after them up to tens of MB. */
const HEAD_BYTES = 128 * 1024;

async function readHead(file: string): Promise<{ head: Uint8Array; whole: boolean }> {
  const fh = await open(file, 'r');
  try {
    const { size } = await fh.stat();
    const len = Math.min(size, HEAD_BYTES);
    const head = new Uint8Array(len);
    await fh.read(head, 0, len, 0);
    return { head, whole: len === size };
  } finally {
    await fh.close();
  }
}

/**
 * Sex (0010,0040), age (0010,1010), size (0010,1020), weight (0010,1030); the value "O" counts as missing.
 * Parses only up to Pixel Data from the file's first 128 kB (the whole file if the header is longer).
 */
export async function readDicomDemographics(file: string): Promise<Result<DicomDemographics, string>> {
  const parseHeader = (bytes: Uint8Array) => dicomParser.parseDicom(bytes, { untilTag: 'x7fe00010' });
  let ds: ReturnType<typeof parseHeader>;
  try {
    const { head, whole } = await readHead(file);
    try {
      ds = parseHeader(head);
    } catch (e) {
      if (whole) throw e;
      ds = parseHeader(new Uint8Array(await readFile(file)));
    }
  } catch (e) {
    const why = e instanceof Error ? e.message : typeof e === 'string' ? e : String((e as { exception?: unknown })?.exception ?? e);
    return err(`${file}: not a readable DICOM file (${why})`);
  }
  const get = (tag: string): string => {
    const v = (ds.string(tag) ?? '').trim();
    return v === 'O' ? '' : v;
  };
  return ok({ sex: get('x00100040'), age: get('x00101010'), size: get('x00101020'), weight: get('x00101030') });
}

const NO_DEMOGRAPHICS: DicomDemographics = { sex: '', age: '', size: '', weight: '' };

/** Demographics of many images (absolute paths), 16 files at a time (header reads are I/O-bound), in input order. */
async function demographicsOf(files: string[]): Promise<Result<DicomDemographics[], string>> {
  const out: DicomDemographics[] = new Array(files.length);
  let next = 0;
  let failure: string | null = null;
  const worker = async (): Promise<void> => {
    while (next < files.length && failure === null) {
      const i = next++;
      const p = files[i]!;
      if (p.endsWith('.png') || !existsSync(p)) {
        out[i] = NO_DEMOGRAPHICS;
        continue;
      }
      const r = await readDicomDemographics(p);
      if (r.ok) out[i] = r.value;
      else failure ??= r.error;
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  return failure === null ? ok(out) : err(failure);
}

/** Image path of a VinDr image: `<split>/<id>.dicom`, or the PNG a converted copy has. */
function vindrImage(root: string, split: string, id: string): string {
  for (const ext of ['.dicom', '.dcm', '.png']) if (existsSync(join(root, split, `${id}${ext}`))) return `${split}/${id}${ext}`;
  return `${split}/${id}.dicom`;
}

/** Majority vote of several radiologists: mean per image, rounded half to even (Python's round). */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

async function vindrCxr(root: string, guard: DatasetPaths, maxTableBytes: number): Promise<Result<DatasetMetadata, string>> {
  const trainFile = join(root, 'annotations', 'image_labels_train.csv');
  const testFile = join(root, 'annotations', 'image_labels_test.csv');
  const train = await readCsv(trainFile, maxTableBytes);
  if (!train.ok) return train;
  const test = await readCsv(testFile, maxTableBytes);
  if (!test.ok) return test;
  const e1 = requireColumns(trainFile, train.value.header, ['image_id', 'rad_id', 'No finding', 'Cardiomegaly']);
  if (e1) return err(e1);
  const testHeader = test.value.header.map((h) => (h === 'Other disease' ? 'Other diseases' : h));
  const e2 = requireColumns(testFile, testHeader, ['image_id', 'No finding', 'Cardiomegaly']);
  if (e2) return err(e2);
  const labels = train.value.header.filter((h) => h !== 'image_id' && h !== 'rad_id');

  const groups = new Map<string, { rows: MetaRow[]; src: RowSource }>();
  toObjects(train.value.header, train.value.records).forEach((r, k) => {
    const g = groups.get(r['image_id']!) ?? { rows: [], src: train.value.sources[k]! };
    g.rows.push(r);
    groups.set(r['image_id']!, g);
  });
  const entries: Array<{ id: string; split: string; lab: Record<string, number>; src: RowSource }> = [];
  for (const [id, { rows: g, src }] of groups) {
    const lab: Record<string, number> = {};
    for (const l of labels) lab[l] = roundHalfEven(g.reduce((s, r) => s + Number(r[l] || 0), 0) / g.length);
    entries.push({ id, split: 'train', lab, src });
  }
  toObjects(testHeader, test.value.records).forEach((r, k) =>
    entries.push({ id: r['image_id']!, split: 'test', lab: Object.fromEntries(labels.map((l) => [l, Number(r[l] || 0)])), src: test.value.sources[k]! }),
  );
  const paths = entries.map((e) => vindrImage(root, e.split, e.id));
  const files = guard.resolveAll(paths, entries.map((e) => e.src));
  if (!files.ok) return files;
  const demos = await demographicsOf(files.value);
  if (!demos.ok) return demos;

  const rows: MetaRow[] = [];
  const dropped: Record<string, number> = {};
  entries.forEach(({ id, split, lab }, i) => {
    const demo = demos.value[i]!;
    const parsed = parseAgeString(demo.age);
    const ageYears = parsed !== null && parsed >= 18 ? parsed : null; // C.2: VinDr-CXR ages kept only if ≥ 18
    if (parsed !== null && parsed < 18) dropped['age < 18 (age set missing)'] = (dropped['age < 18 (age set missing)'] ?? 0) + 1;
    rows.push({
      dset: 'vindr_cxr',
      split,
      image_id: id,
      patient_id: id,
      path: paths[i]!,
      sex: demo.sex,
      age: demo.age,
      age_years: fmt(ageYears),
      age_months: fmt(ageYears === null ? null : 12 * ageYears),
      view: 'PA',
      'Has Finding': String(1 - (lab['No finding'] ?? 0)),
      ...Object.fromEntries(labels.map((l) => [l, String(lab[l] ?? 0)])),
    });
  });
  const columns = ['dset', 'split', 'image_id', 'patient_id', 'path', 'sex', 'age', 'age_years', 'age_months', 'view', 'Has Finding', ...labels];
  return ok({ rows, columns, dropped, files: files.value });
}

async function vindrPcxr(root: string, guard: DatasetPaths, maxTableBytes: number): Promise<Result<DatasetMetadata, string>> {
  const entries: Array<{ r: MetaRow; path: string; src: RowSource }> = [];
  let labels: string[] = [];
  for (const split of ['train', 'test']) {
    const file = join(root, `image_labels_${split}.csv`);
    const csv = await readCsv(file, maxTableBytes);
    if (!csv.ok) return csv;
    const e = requireColumns(file, csv.value.header, ['image_id', 'No finding']);
    if (e) return err(e);
    labels = csv.value.header.filter((h) => h !== 'image_id' && h !== 'rad_ID' && h !== 'rad_id');
    toObjects(csv.value.header, csv.value.records).forEach((r, k) =>
      entries.push({ r, path: vindrImage(root, split, r['image_id']!), src: csv.value.sources[k]! }),
    );
  }
  const files = guard.resolveAll(entries.map((e) => e.path), entries.map((e) => e.src));
  if (!files.ok) return files;
  const demos = await demographicsOf(files.value);
  if (!demos.ok) return demos;
  const rows = entries.map(({ r, path }, i): MetaRow => {
    const demo = demos.value[i]!;
    const parsed = parseAgeString(demo.age);
    return {
      dset: 'vindr_pcxr',
      split: 'test', // C.2: the whole pediatric set is a test set
      image_id: r['image_id']!,
      patient_id: r['image_id']!,
      path,
      sex: demo.sex,
      age: demo.age,
      age_years: fmt(parsed !== null && Math.trunc(parsed) <= 10 ? parsed : null),
      view: 'PA',
      'Has Finding': String(1 - Number(r['No finding'] || 0)),
      Cardiomegaly: '-1', // not labelled in VinDr-PCXR; the placeholder inference expects (B.1)
      ...Object.fromEntries(labels.map((l) => [l, r[l] ?? ''])),
    };
  });
  const columns = ['dset', 'split', 'image_id', 'patient_id', 'path', 'sex', 'age', 'age_years', 'view', 'Has Finding', 'Cardiomegaly', ...labels];
  return ok({ rows, columns, dropped: {}, files: files.value });
}

/** torchxrayvision's pre-resized `images-224/`, the originals' `images/`, or PadChest's numbered zip folders. */
function imageDir(root: string, file: string, extraDirs: string[] = []): string {
  for (const d of ['images-224', 'images', ...extraDirs]) if (existsSync(join(root, d, file))) return `${d}/${file}`;
  return `images-224/${file}`;
}

async function nih(root: string, guard: DatasetPaths, maxTableBytes: number): Promise<Result<DatasetMetadata, string>> {
  const file = join(root, 'Data_Entry_2017.csv');
  const csv = await readCsv(file, maxTableBytes);
  if (!csv.ok) return csv;
  const e = requireColumns(file, csv.value.header, ['Image Index', 'Finding Labels', 'Follow-up #', 'Patient ID', 'Patient Age', 'Patient Gender', 'View Position']);
  if (e) return err(e);
  const rows = toObjects(csv.value.header, csv.value.records).map((r): MetaRow => {
    const filename = r['Image Index']!;
    const findings = r['Finding Labels'] ?? '';
    return {
      dset: 'nih_cxr18',
      split: '',
      image_id: filename,
      patient_id: filename.split('_')[0]!,
      path: imageDir(root, filename),
      filename,
      visit: r['Follow-up #'] ?? '',
      gender: r['Patient Gender'] ?? '',
      view: r['View Position'] ?? '',
      age: r['Patient Age'] ?? '',
      age_years: fmt(parseAgeString(r['Patient Age'])),
      Findings: findings,
      'Has Finding': findings !== 'No Finding' ? '1' : '0',
      Cardiomegaly: findings.includes('Cardiomegaly') ? '1' : '0',
    };
  });
  const columns = ['dset', 'split', 'image_id', 'patient_id', 'path', 'filename', 'visit', 'gender', 'view', 'age', 'age_years', 'Findings', 'Has Finding', 'Cardiomegaly'];
  const files = guard.resolveAll(rows.map((r) => r['path']!), csv.value.sources);
  if (!files.ok) return files;
  return ok({ rows, columns, dropped: {}, files: files.value });
}

async function padchest(root: string, guard: DatasetPaths, maxTableBytes: number): Promise<Result<DatasetMetadata, string>> {
  const file = join(root, 'PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv');
  const csv = await readCsv(file, maxTableBytes);
  if (!csv.ok) return csv;
  const e = requireColumns(file, csv.value.header, ['ImageID', 'StudyID', 'PatientBirth', 'ViewPosition_DICOM', 'PatientSex_DICOM', 'StudyDate_DICOM', 'Labels']);
  if (e) return err(e);
  const dropped: Record<string, number> = {};
  const drop = (why: string): void => void (dropped[why] = (dropped[why] ?? 0) + 1);
  const rows: MetaRow[] = [];
  const files: string[] = [];
  for (const [k, r] of toObjects(csv.value.header, csv.value.records).entries()) {
    const filename = r['ImageID']!;
    const path = imageDir(root, filename, r['ImageDir'] ? [r['ImageDir']] : []);
    const file = guard.resolveAll([path], [csv.value.sources[k]!]);
    if (!file.ok) return file;
    if (!existsSync(file.value[0]!)) {
      drop('image missing on disk');
      continue;
    }
    const findings = r['Labels'] ?? '';
    if (findings.trim() === '') {
      drop('empty Labels');
      continue;
    }
    const view = r['ViewPosition_DICOM'] ?? '';
    if (view !== 'POSTEROANTERIOR' && view !== 'PA') {
      drop('view not PA');
      continue;
    }
    const year = (r['StudyDate_DICOM'] ?? '').slice(0, 4);
    const birth = Number.parseInt(r['PatientBirth'] ?? '', 10);
    const age = /^\d{4}$/.test(year) && Number.isFinite(birth) ? Number(year) - birth : null;
    const lower = findings.toLowerCase();
    files.push(file.value[0]!);
    rows.push({
      dset: 'padchest',
      split: '',
      image_id: filename,
      patient_id: r['StudyID']!, // a study, not a patient (quirk 16)
      path,
      filename,
      birth_year: r['PatientBirth'] ?? '',
      sex: r['PatientSex_DICOM'] ?? '',
      view: 'PA',
      age: '',
      age_years: fmt(age),
      Findings: findings,
      'Has Finding': lower.includes("'normal'") ? '0' : '1',
      Cardiomegaly: lower.includes("'cardiomegaly'") ? '1' : '0',
    });
  }
  const columns = ['dset', 'split', 'image_id', 'patient_id', 'path', 'filename', 'birth_year', 'sex', 'view', 'age', 'age_years', 'Findings', 'Has Finding', 'Cardiomegaly'];
  return ok({ rows, columns, dropped, files });
}

export const CHEXPERT_FINDINGS = [
  'Enlarged Cardiomediastinum', 'Cardiomegaly', 'Lung Opacity', 'Lung Lesion', 'Edema', 'Consolidation', 'Pneumonia',
  'Atelectasis', 'Pneumothorax', 'Pleural Effusion', 'Pleural Other', 'Fracture', 'Support Devices', 'No Finding',
] as const;

async function chexpert(root: string, guard: DatasetPaths, maxTableBytes: number): Promise<Result<DatasetMetadata, string>> {
  const rows: MetaRow[] = [];
  const sources: RowSource[] = [];
  const dropped: Record<string, number> = {};
  const drop = (why: string): void => void (dropped[why] = (dropped[why] ?? 0) + 1);
  for (const name of ['train_cheXbert.csv', 'valid.csv']) {
    const file = join(root, name);
    const csv = await readCsv(file, maxTableBytes);
    if (!csv.ok) return csv;
    const e = requireColumns(file, csv.value.header, ['Path', 'Sex', 'Age', 'AP/PA', ...CHEXPERT_FINDINGS]);
    if (e) return err(e);
    for (const [k, r] of toObjects(csv.value.header, csv.value.records).entries()) {
      if (CHEXPERT_FINDINGS.every((f) => (r[f] ?? '') === '')) {
        drop('all findings empty');
        continue;
      }
      if (r['Age'] === '0') {
        drop('age 0');
        continue;
      }
      if (r['AP/PA'] !== 'PA') {
        drop('view not PA');
        continue;
      }
      // "CheXpert-v1.0/train/patient03922/study10/view1_frontal.jpg"
      const parts = r['Path']!.split('/');
      const noFinding = r['No Finding'] === '' ? 0 : Number(r['No Finding']);
      sources.push(csv.value.sources[k]!);
      rows.push({
        dset: 'chexbert',
        split: '',
        image_id: parts.slice(2).join('-'),
        patient_id: parts[2] ?? '',
        visit: parts[3] ?? '',
        path: parts.slice(1).join('/'),
        sex: r['Sex'] ?? '',
        view: 'PA',
        age: '',
        age_years: r['Age'] ?? '',
        'Has Finding': String(1 - noFinding),
        ...Object.fromEntries(CHEXPERT_FINDINGS.map((f) => [f, r[f] ?? ''])),
      });
    }
  }
  const columns = ['dset', 'split', 'image_id', 'patient_id', 'visit', 'path', 'sex', 'view', 'age', 'age_years', 'Has Finding', ...CHEXPERT_FINDINGS];
  const files = guard.resolveAll(rows.map((r) => r['path']!), sources);
  if (!files.ok) return files;
  return ok({ rows, columns, dropped, files: files.value });
}

/**
 * Read a dataset root in its published layout (C.1) into unified metadata rows (C.2), with every image path checked
 * to stay inside the root (DatasetPaths). Each table is bounded by `maxTableBytes` (unzipped).
 */
export async function readDatasetMetadata(
  root: string,
  layout: MetadataLayout,
  maxTableBytes = DEFAULT_MAX_TABLE_BYTES,
): Promise<Result<DatasetMetadata, string>> {
  const guard = new DatasetPaths(root);
  switch (layout) {
    case 'vindr_cxr':
      return vindrCxr(root, guard, maxTableBytes);
    case 'vindr_pcxr':
      return vindrPcxr(root, guard, maxTableBytes);
    case 'nih':
      return nih(root, guard, maxTableBytes);
    case 'padchest':
      return padchest(root, guard, maxTableBytes);
    case 'chexpert':
      return chexpert(root, guard, maxTableBytes);
  }
}
