/**
 * Who is in a synthetic dataset: patients (age, sex, disease) and their images (view, split, follow-ups), drawn
 * from a seeded stream. Layout-specific defaults mirror the real datasets' rough age mixes.
 */
import { drawAnatomy, drawCtr, type Anatomy } from './anatomy.js';
import type { Exposure, Finding } from './phantom.js';
import type { Rng } from './prng.js';

export const LAYOUTS = ['vindr_cxr', 'vindr_pcxr', 'nih', 'padchest'] as const;
export type Layout = (typeof LAYOUTS)[number];

export interface AgeDistribution {
  /** Truncated normal between min and max (years). */
  min: number;
  max: number;
  mean: number;
  sd: number;
  /** Share of patients under one year (ages recorded in months or days), for pediatric sets. */
  infantFraction: number;
  /** Share of patients aged 2–17 in an adult set (NIH/PadChest send them to test_peds; VinDr-CXR drops them). */
  minorFraction: number;
  /** Share whose age is not recorded (DICOM PatientAge absent). */
  missingFraction: number;
}

export interface CohortOptions {
  layout: Layout;
  patients: number;
  cardiomegalyPrevalence: number;
  /** Prevalence of other findings (nodule, effusion, opacity) among patients without cardiomegaly. */
  findingPrevalence: number;
  ages: AgeDistribution;
  /** Mean images per patient (≥ 1): follow-up visits (NIH) or lateral views (PadChest). */
  imagesPerPatient: number;
  /** Share of images in the official test split (VinDr). */
  testFraction: number;
}

export interface SynthImage {
  index: number;
  imageId: string;
  patientId: string;
  /** True age in days (null = age not recorded). */
  ageDays: number | null;
  sex: 'M' | 'F';
  cardiomegaly: boolean;
  findings: Finding[];
  view: 'PA' | 'AP' | 'L';
  split: 'train' | 'test';
  visit: number;
  /** Year the image was taken (PadChest ages are StudyDate − birth year). */
  studyYear: number;
  anatomy: Anatomy;
  exposure: Exposure;
}

export const DEFAULT_AGES: Record<Layout, AgeDistribution> = {
  vindr_cxr: { min: 18, max: 90, mean: 48, sd: 16, infantFraction: 0, minorFraction: 0.02, missingFraction: 0.04 },
  vindr_pcxr: { min: 0, max: 10, mean: 4, sd: 3.5, infantFraction: 0.35, minorFraction: 0, missingFraction: 0.02 },
  nih: { min: 18, max: 95, mean: 47, sd: 17, infantFraction: 0, minorFraction: 0.05, missingFraction: 0 },
  padchest: { min: 18, max: 99, mean: 60, sd: 18, infantFraction: 0, minorFraction: 0.02, missingFraction: 0 },
};

export const DEFAULT_PREVALENCE: Record<Layout, { cardiomegaly: number; findings: number; imagesPerPatient: number }> = {
  vindr_cxr: { cardiomegaly: 0.12, findings: 0.25, imagesPerPatient: 1 },
  vindr_pcxr: { cardiomegaly: 0, findings: 0.3, imagesPerPatient: 1 },
  nih: { cardiomegaly: 0.1, findings: 0.3, imagesPerPatient: 1.6 },
  padchest: { cardiomegaly: 0.12, findings: 0.25, imagesPerPatient: 1.4 },
};

/** Acquisition style per dataset (sites differ in contrast, gamma and noise), randomised per image. */
function drawExposure(rng: Rng, layout: Layout): Exposure {
  const base = {
    vindr_cxr: { contrast: 1.15, brightness: 0, gamma: [0.9, 1.15], noise: [0.01, 0.02] },
    vindr_pcxr: { contrast: 1.1, brightness: 0.02, gamma: [0.9, 1.2], noise: [0.015, 0.03] },
    nih: { contrast: 1.0, brightness: -0.03, gamma: [1.0, 1.3], noise: [0.01, 0.02] },
    padchest: { contrast: 1.2, brightness: 0.02, gamma: [0.85, 1.1], noise: [0.008, 0.018] },
  }[layout];
  return {
    contrast: base.contrast * rng.uniform(0.9, 1.1),
    brightness: base.brightness + rng.uniform(-0.04, 0.04),
    gamma: rng.uniform(base.gamma[0]!, base.gamma[1]!),
    noise: rng.uniform(base.noise[0]!, base.noise[1]!),
    heel: rng.uniform(-0.1, 0.1),
  };
}

function drawAgeDays(rng: Rng, a: AgeDistribution): number {
  if (a.infantFraction > 0 && rng.bernoulli(a.infantFraction)) return rng.int(1, 364);
  if (a.minorFraction > 0 && rng.bernoulli(a.minorFraction)) return Math.floor(rng.uniform(2, 18) * 365.25);
  const lo = Math.max(a.min, a.infantFraction > 0 ? 1 : a.min);
  let years = rng.normal(a.mean, a.sd);
  for (let k = 0; k < 20 && (years < lo || years >= a.max + 1); k++) years = rng.normal(a.mean, a.sd);
  years = Math.min(a.max + 0.999, Math.max(lo, years));
  return Math.floor(years * 365.25);
}

const FINDINGS: readonly Finding[] = ['nodule', 'effusion', 'opacity'];

/** Draw the cohort. Each image gets its own forked stream, so rendering order and parallelism do not matter. */
export function drawCohort(rng: Rng, o: CohortOptions): SynthImage[] {
  const images: SynthImage[] = [];
  const patients = rng.fork('patients');
  for (let p = 0; p < o.patients; p++) {
    const pr = patients.fork(p);
    const ageDays = drawAgeDays(pr, o.ages);
    const missingAge = pr.bernoulli(o.ages.missingFraction);
    const sex = pr.bernoulli(0.5) ? 'M' : 'F';
    const cardiomegaly = pr.bernoulli(o.cardiomegalyPrevalence);
    const findings: Finding[] = [];
    if (!cardiomegaly ? pr.bernoulli(o.findingPrevalence) : pr.bernoulli(0.3)) findings.push(pr.pick(FINDINGS));
    const nImages = 1 + (o.imagesPerPatient > 1 ? Math.floor(pr.uniform(0, 2 * (o.imagesPerPatient - 1) + 1)) : 0);
    const split = pr.bernoulli(o.testFraction) ? 'test' : 'train';
    const studyYear = pr.int(2008, 2019);
    const patientId = o.layout === 'nih' ? String(p + 1).padStart(8, '0') : o.layout === 'padchest' ? pr.hex(8) : '';
    for (let v = 0; v < nImages; v++) {
      const ir = pr.fork(`image${v}`);
      const days = ageDays + v * ir.int(30, 400);
      const age = days / 365.25;
      const ctr = drawCtr(ir, age, cardiomegaly);
      const view: SynthImage['view'] =
        o.layout === 'padchest' && v > 0 ? 'L' : o.layout === 'nih' && ir.bernoulli(0.35) ? 'AP' : 'PA';
      const imageId =
        o.layout === 'nih'
          ? `${patientId}_${String(v).padStart(3, '0')}.png`
          : o.layout === 'padchest'
            ? `${ir.hex(24)}_${ir.hex(6)}.png`
            : ir.hex(32);
      images.push({
        index: images.length,
        imageId,
        patientId: patientId || imageId,
        ageDays: missingAge ? null : days,
        sex,
        cardiomegaly,
        findings,
        view,
        split,
        visit: v,
        studyYear: studyYear + Math.floor((v * 200) / 365),
        anatomy: drawAnatomy(ir, age, ctr),
        exposure: drawExposure(ir, o.layout),
      });
    }
  }
  return images;
}

/** DICOM Age String (AS): "045Y", "010M", "020D" — the format of VinDr's PatientAge and NIH's older CSV. */
export function formatAgeString(days: number): string {
  const years = Math.floor(days / 365.25);
  if (years >= 1) return `${String(years).padStart(3, '0')}Y`;
  const months = Math.floor(days / 30.44);
  if (months >= 1) return `${String(months).padStart(3, '0')}M`;
  return `${String(days).padStart(3, '0')}D`;
}
