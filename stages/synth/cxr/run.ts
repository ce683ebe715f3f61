import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { StageError, type StageContext } from '../../../engine/stage-api.js';
import {
  DEFAULT_AGES,
  DEFAULT_PREVALENCE,
  LAYOUTS,
  drawCohort,
  type AgeDistribution,
  type Layout,
  type SynthImage,
} from './cohort.js';
import { layoutFiles, type ImageFormat } from './layouts.js';
import { RenderPool } from './pool.js';
import { createRng } from './prng.js';
import { synthesizeImage } from './render.js';
import { writeDirAtomic } from '../../lib/atomic-write.js';

export interface SynthWith {
  out: string;
  layout: Layout;
  patients: number;
  seed: number;
  size: number;
  format?: ImageFormat;
  cardiomegaly_prevalence?: number;
  finding_prevalence?: number;
  ages?: Partial<Record<'min' | 'max' | 'mean' | 'sd' | 'infant_fraction' | 'minor_fraction' | 'missing_fraction', number>>;
  images_per_patient?: number;
  test_fraction: number;
  monochrome1_fraction: number;
  compression: 'none' | 'jpeg2000';
}

const DEFAULT_FORMAT: Record<Layout, ImageFormat> = { vindr_cxr: 'dicom', vindr_pcxr: 'dicom', nih: 'png8', padchest: 'png16' };

function fail(stage: string, field: string, why: string): never {
  throw new StageError(`stage ${stage}: with.${field} ${why}`);
}

function ageDistribution(stage: string, layout: Layout, o: SynthWith['ages']): AgeDistribution {
  const d = DEFAULT_AGES[layout];
  const a: AgeDistribution = {
    min: o?.min ?? d.min,
    max: o?.max ?? d.max,
    mean: o?.mean ?? d.mean,
    sd: o?.sd ?? d.sd,
    infantFraction: o?.infant_fraction ?? d.infantFraction,
    minorFraction: o?.minor_fraction ?? d.minorFraction,
    missingFraction: o?.missing_fraction ?? d.missingFraction,
  };
  for (const [k, v] of Object.entries(a))
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) fail(stage, `ages.${k}`, `must be a non-negative number (got ${String(v)})`);
  if (a.max < a.min) fail(stage, 'ages', `has max ${a.max} below min ${a.min}`);
  for (const k of ['infantFraction', 'minorFraction', 'missingFraction'] as const)
    if (a[k] > 1) fail(stage, 'ages', `fraction ${k} must be within [0, 1]`);
  return a;
}

/** Validate `with:` beyond what the manifest's types already guarantee. */
export function resolveOptions(stage: string, w: SynthWith) {
  if (!LAYOUTS.includes(w.layout)) fail(stage, 'layout', `must be one of ${LAYOUTS.join(', ')} (got ${String(w.layout)})`);
  if (!Number.isInteger(w.patients) || w.patients < 1) fail(stage, 'patients', `must be a positive integer (got ${w.patients})`);
  if (!Number.isInteger(w.size) || w.size < 32 || w.size > 4096) fail(stage, 'size', `must be an integer in [32, 4096] (got ${w.size})`);
  const format = w.format ?? DEFAULT_FORMAT[w.layout];
  if (w.compression !== undefined && w.compression !== 'none' && w.compression !== 'jpeg2000')
    fail(stage, 'compression', `must be none or jpeg2000 (got ${String(w.compression)})`);
  if (w.compression === 'jpeg2000' && format !== 'dicom') fail(stage, 'compression', `jpeg2000 applies to DICOM output only (format is ${format})`);
  if ((w.layout === 'nih' || w.layout === 'padchest') && format === 'dicom')
    fail(stage, 'format', `dicom is not available for layout ${w.layout}: that dataset is distributed as PNG files`);
  const prev = DEFAULT_PREVALENCE[w.layout];
  const frac = (field: string, v: number | undefined, d: number): number => {
    const x = v ?? d;
    if (typeof x !== 'number' || !(x >= 0 && x <= 1)) fail(stage, field, `must be a number within [0, 1] (got ${String(x)})`);
    return x;
  };
  const imagesPerPatient = w.images_per_patient ?? prev.imagesPerPatient;
  if (!(imagesPerPatient >= 1)) fail(stage, 'images_per_patient', `must be at least 1 (got ${imagesPerPatient})`);
  return {
    format,
    cohort: {
      layout: w.layout,
      patients: w.patients,
      cardiomegalyPrevalence: frac('cardiomegaly_prevalence', w.cardiomegaly_prevalence, prev.cardiomegaly),
      findingPrevalence: frac('finding_prevalence', w.finding_prevalence, prev.findings),
      ages: ageDistribution(stage, w.layout, w.ages),
      imagesPerPatient,
      testFraction: frac('test_fraction', w.test_fraction, 0.17),
    },
    monochrome1Fraction: frac('monochrome1_fraction', w.monochrome1_fraction, 0.3),
  };
}

export async function run(ctx: StageContext<SynthWith>): Promise<void> {
  const w = ctx.with;
  const opts = resolveOptions(ctx.stage, w);
  // The layout is part of the stream's seed: two datasets drawn with the same seed must not share image ids.
  const rng = createRng(`${w.seed}/${w.layout}`);
  const images = drawCohort(rng.fork('cohort'), opts.cohort);
  const files = layoutFiles(w.layout, images, opts.format, w.size, rng.fork('labels'));

  const outDir = ctx.resolve(w.out);
  ctx.log(`synthesizing ${images.length} ${opts.format} images of ${w.patients} patients in the ${w.layout} layout`);
  ctx.progress({ done: 0, total: images.length, unit: 'images' });

  const truth: unknown[][] = new Array(images.length);
  const made = new Set<string>();
  const seed = `${w.seed}/${w.layout}`;
  // Rendering is plain JS: with more than one CPU granted, spread it over worker threads (same bytes either way).
  const workers = Math.min(ctx.resources.cpus || 1, availableParallelism(), Math.ceil(images.length / 8));
  const pool = workers > 1 ? new RenderPool(workers) : null;
  let done = 0;
  const one = async (tmp: string, img: SynthImage): Promise<void> => {
    if (ctx.signal.aborted) throw new StageError(`stage ${ctx.stage}: cancelled`);
    const rel = files.imagePath(img);
    const file = join(tmp, rel);
    let r: { measuredCtr: number; photometric?: string };
    if (pool) {
      r = await pool.render({ id: img.index, img, file, size: w.size, format: opts.format, monochrome1Fraction: opts.monochrome1Fraction, seed, compression: w.compression ?? 'none' });
    } else {
      const dir = dirname(file);
      if (!made.has(dir)) await mkdir(dir, { recursive: true }), made.add(dir);
      const out = await synthesizeImage(img, w.size, opts.format, opts.monochrome1Fraction, seed, w.compression);
      await writeFile(file, out.bytes);
      r = out;
    }
    truth[img.index] = [
      img.imageId,
      img.patientId,
      rel,
      img.ageDays ?? '',
      img.ageDays === null ? '' : (img.ageDays / 365.25).toFixed(3),
      img.sex,
      img.cardiomegaly ? 1 : 0,
      img.findings.join('|'),
      img.anatomy.ctr.toFixed(4),
      r.measuredCtr.toFixed(4),
      img.view,
      r.photometric ?? '',
    ];
    done++;
    if (done % 10 === 0 || done === images.length) ctx.progress({ done, total: images.length, unit: 'images' });
  };
  try {
    await writeDirAtomic(outDir, async (tmp) => {
      if (pool) {
        let next = 0;
        const lane = async (): Promise<void> => {
          while (next < images.length) await one(tmp, images[next++]!);
        };
        await Promise.all(Array.from({ length: workers * 2 }, lane));
      } else for (const img of images) await one(tmp, img);
      for (const [rel, text] of Object.entries(files.csv)) {
        await mkdir(dirname(join(tmp, rel)), { recursive: true });
        await writeFile(join(tmp, rel), text);
      }
      // Ground truth the real datasets do not have (the phantom's true CTR), kept apart from the real layout's files.
      await writeFile(
        join(tmp, 'phantom_truth.csv'),
        stringify([
          ['image_id', 'patient_id', 'path', 'age_days', 'age_years_true', 'sex', 'cardiomegaly', 'findings', 'ctr', 'measured_ctr', 'view', 'photometric'],
          ...truth,
        ]),
      );
    });
  } finally {
    await pool?.close();
  }
  const positives = images.filter((i) => i.cardiomegaly).length;
  ctx.record({ synth: { layout: w.layout, images: images.length, patients: w.patients, format: opts.format, cardiomegaly: positives } });
  ctx.log(`wrote ${images.length} images (${positives} with cardiomegaly) to ${w.out}`);
}
