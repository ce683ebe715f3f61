/**
 * Age-dependent anatomy of the phantom. The one property the study hinges on is the cardiothoracic ratio (CTR):
 * heart width / internal thoracic width on a PA film.
 *
 *  - healthy adults: CTR mostly 0.40–0.50 with a tail up to 0.54 (readers disagree near the cut-off, and CTR is not
 *    the only criterion), rising slightly with age (mean ≈0.44 at 18 → ≈0.48 at 90), so older adults are flagged a
 *    little more often, as in the paper;
 *  - adult cardiomegaly: CTR > 0.5 (drawn 0.50–0.66), so the classes overlap a little, as real labels do;
 *  - healthy children: physiologically larger hearts — up to ~0.6 is normal in infants, falling to ~0.5 by age 10.
 *
 * A classifier that learns "CTR > ~0.5 = cardiomegaly" from adults therefore flags many healthy young children:
 * the study's effect, present here by construction (see README.md).
 */
import type { Rng } from './prng.js';

export interface Anatomy {
  /** Age in years (fractional for infants). */
  ageYears: number;
  /** Cardiothoracic ratio actually drawn. */
  ctr: number;
  /** Half-width and half-height of the thorax (fractions of the image). */
  thoraxHalfWidth: number;
  thoraxHalfHeight: number;
  /** Vertical position of the diaphragm domes (fraction of image height). */
  diaphragmY: number;
  /** Top of the lung apices. */
  apexY: number;
  /** Rib slope (posterior ribs run down laterally; more horizontal in infants). */
  ribSlope: number;
  ribCount: number;
  spineHalfWidth: number;
  /** Thymic shadow (upper mediastinal widening) in infants, 0–1. */
  thymus: number;
  /** Left-right offset of the heart's centre towards the patient's left (image right), fraction of heart width. */
  heartShift: number;
}

export const HEALTHY_ADULT_CTR_MAX = 0.54;

/** Mean healthy CTR for an age (years). */
export function healthyCtrMean(age: number): number {
  if (age < 10) return 0.57 - 0.007 * Math.max(0, age); // 0.57 at birth → 0.50 at 10
  if (age < 18) return 0.5 - (0.04 * (age - 10)) / 8; // → 0.46 at 18
  return 0.44 + 0.0005 * (Math.min(age, 90) - 18); // 0.44 → 0.476
}

const clamp = (x: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, x));

/** Draw a CTR for a patient of this age with or without cardiomegaly. */
export function drawCtr(rng: Rng, age: number, cardiomegaly: boolean): number {
  if (cardiomegaly) return age < 18 ? rng.uniform(0.63, 0.72) : rng.uniform(0.5, 0.66);
  const ctr = rng.normal(healthyCtrMean(age), age >= 18 ? 0.03 : 0.024);
  // Healthy adults stay inside the normal range; children keep their physiologically high ratios.
  return age >= 18 ? clamp(ctr, 0.38, HEALTHY_ADULT_CTR_MAX) : clamp(ctr, 0.44, 0.64);
}

/** Body proportions by age: infants have round, short thoraces with horizontal ribs and a thymic shadow. */
export function drawAnatomy(rng: Rng, age: number, ctr: number): Anatomy {
  const child = clamp(age / 14, 0, 1); // 0 = newborn … 1 = adult proportions
  const aspect = 0.95 + 0.35 * child; // thorax height / width
  const halfWidth = clamp(rng.normal(0.36, 0.015), 0.32, 0.4);
  return {
    ageYears: age,
    ctr,
    thoraxHalfWidth: halfWidth,
    thoraxHalfHeight: halfWidth * aspect,
    diaphragmY: clamp(rng.normal(0.7 + 0.08 * child, 0.015), 0.62, 0.84),
    apexY: clamp(rng.normal(0.18 - 0.04 * child, 0.01), 0.1, 0.22),
    ribSlope: 0.05 + 0.2 * child + rng.uniform(-0.02, 0.02),
    ribCount: 9 + Math.round(child),
    spineHalfWidth: 0.028 + 0.006 * child,
    thymus: age < 3 ? (1 - age / 3) * rng.uniform(0.5, 1) : 0,
    heartShift: rng.uniform(0.12, 0.22),
  };
}
