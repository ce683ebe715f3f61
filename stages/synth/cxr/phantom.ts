/**
 * Procedural PA chest-radiograph phantom: body and shoulders, two lungs with vessel texture and diaphragm domes,
 * spine, posterior ribs, clavicles, heart silhouette (sized from the anatomy's CTR), optional findings, then exposure
 * (gain, gamma, heel-effect gradient) and quantum noise. Pure: same inputs and rng stream → same pixels.
 *
 * Output is a display image in [0, 1] with MONOCHROME2 semantics (dense = bright), plus the heart and lung masks'
 * widths, so tests can measure the CTR the image really shows.
 */
import type { Anatomy } from './anatomy.js';
import type { Rng } from './prng.js';

export type Finding = 'nodule' | 'effusion' | 'opacity';

/** Per-image acquisition variation (what differs between scanners/sites). */
export interface Exposure {
  /** Display contrast multiplier around mid-grey. */
  contrast: number;
  /** Additive brightness offset. */
  brightness: number;
  gamma: number;
  /** Standard deviation of per-pixel noise (display units). */
  noise: number;
  /** Left-right intensity gradient amplitude (anode heel effect). */
  heel: number;
}

export interface PhantomSpec {
  size: number;
  anatomy: Anatomy;
  findings: Finding[];
  exposure: Exposure;
}

export interface Phantom {
  size: number;
  /** Display intensities in [0, 1], row-major size×size. */
  image: Float32Array;
  /** Widest horizontal extent (pixels) of the heart mask and of the lungs (internal thoracic width). */
  heartWidthPx: number;
  thoraxWidthPx: number;
  /** heartWidthPx / thoraxWidthPx. */
  measuredCtr: number;
}

const clamp01 = (x: number): number => (x < 0 ? 0 : x > 1 ? 1 : x);

/** Smooth inside-ness from a signed distance (negative inside), `edge` wide, avoiding aliased outlines. */
const soft = (signedDist: number, edge: number): number => clamp01(0.5 - signedDist / edge);

/** Value noise on a coarse grid, bilinearly interpolated: cheap stand-in for lung vessel markings. */
function valueNoise(rng: Rng, cells: number): (x: number, y: number) => number {
  const n = cells + 2;
  const g = new Float32Array(n * n);
  for (let i = 0; i < g.length; i++) g[i] = rng.next() * 2 - 1;
  return (x, y) => {
    const fx = x * cells;
    const fy = y * cells;
    const ix = Math.min(cells, Math.max(0, Math.floor(fx)));
    const iy = Math.min(cells, Math.max(0, Math.floor(fy)));
    const tx = fx - ix;
    const ty = fy - iy;
    const a = g[iy * n + ix]!;
    const b = g[iy * n + ix + 1]!;
    const c = g[(iy + 1) * n + ix]!;
    const d = g[(iy + 1) * n + ix + 1]!;
    return a + (b - a) * tx + (c - a) * ty + (a - b - c + d) * tx * ty;
  };
}

interface Blob {
  x: number;
  y: number;
  r: number;
  amp: number;
  hard: boolean;
}

export function renderPhantom(spec: PhantomSpec, rng: Rng): Phantom {
  const { size, anatomy: an, exposure: ex } = spec;
  const px = 1 / size;
  const edge = 1.5 * px;
  const img = new Float32Array(size * size);

  // Lungs: lateral edges at 0.5 ± inner/2 (internal thoracic width), apex to diaphragm.
  const inner = 2 * an.thoraxHalfWidth * 0.9;
  const lungHalfW = (inner / 4) * 1.05;
  const lungCx = inner / 2 - lungHalfW;
  const lungHalfH = (an.diaphragmY + 0.06 - an.apexY) / 2;
  const lungCy = an.apexY + lungHalfH;
  const domeDepth = 0.045;

  // Heart: rotated ellipse whose horizontal extent is exactly ctr × inner.
  const heartHalfExtent = (an.ctr * inner) / 2;
  const theta = 0.35;
  const bRatio = 0.75;
  const ha = heartHalfExtent / Math.sqrt(Math.cos(theta) ** 2 + bRatio ** 2 * Math.sin(theta) ** 2);
  const hb = ha * bRatio;
  const heartCx = 0.5 + an.heartShift * heartHalfExtent;
  const vExtent = Math.sqrt((ha * Math.sin(theta)) ** 2 + (hb * Math.cos(theta)) ** 2);
  const heartCy = an.diaphragmY + 0.01 - vExtent * 0.85;
  const cosT = Math.cos(theta);
  const sinT = Math.sin(theta);

  const bodyHalfW = an.thoraxHalfWidth + 0.07;
  const bodyCy = 0.6;
  const bodyHalfH = 0.62;
  const ribSpacing = ((an.diaphragmY - an.apexY) / (an.ribCount - 1)) * 0.95;
  const ribHalfT = 0.0065 + 0.002 * Math.min(1, an.ageYears / 14);

  const texture = valueNoise(rng, 24);
  const texture2 = valueNoise(rng, 9);

  // Findings as blobs (nodules, opacities) and a fluid level (effusion) on one side.
  const blobs: Blob[] = [];
  let effusionSide = 0;
  let effusionLevel = 2;
  for (const f of spec.findings) {
    const side = rng.bernoulli(0.5) ? -1 : 1;
    const x = 0.5 + side * (lungCx + rng.uniform(-0.4, 0.5) * lungHalfW);
    const y = rng.uniform(an.apexY + 0.12, an.diaphragmY - 0.08);
    if (f === 'nodule') blobs.push({ x, y, r: rng.uniform(0.015, 0.035), amp: 0.22, hard: true });
    if (f === 'opacity') blobs.push({ x, y, r: rng.uniform(0.05, 0.09), amp: 0.16, hard: false });
    if (f === 'effusion') {
      effusionSide = side;
      effusionLevel = an.diaphragmY - rng.uniform(0.05, 0.12);
    }
  }

  let heartMinX = Infinity;
  let heartMaxX = -Infinity;
  let lungMinX = Infinity;
  let lungMaxX = -Infinity;

  for (let j = 0; j < size; j++) {
    const y = (j + 0.5) * px;
    // Mediastinum half-width (lungs cannot cross it); wider at the top in infants (thymus).
    const med = an.spineHalfWidth + 0.025 + an.thymus * 0.08 * Math.exp(-(((y - (an.apexY + 0.12)) / 0.09) ** 2));
    for (let i = 0; i < size; i++) {
      const x = (i + 0.5) * px;
      const dx = x - 0.5;
      const adx = Math.abs(dx);
      const side = dx < 0 ? -1 : 1;

      // Body: ellipse plus shoulders and neck.
      const be = Math.sqrt((dx / bodyHalfW) ** 2 + ((y - bodyCy) / bodyHalfH) ** 2) - 1;
      let body = soft(be * bodyHalfW, edge * 2);
      // Shoulders slope down laterally from the neck.
      if (y < 0.6) {
        const top = an.apexY - 0.07 + 0.9 * Math.max(0, adx - 0.1) ** 2;
        const lateral = bodyHalfW + 0.035 - 0.5 * Math.max(0, y - 0.35);
        body = Math.max(body, Math.min(soft(top - y, edge * 2), soft(adx - lateral, edge * 2)));
      }
      if (y < an.apexY + 0.05) body = Math.max(body, soft(adx - 0.075, edge * 2));
      if (body <= 0) {
        img[j * size + i] = 0.03;
        continue;
      }
      const thickness = Math.sqrt(Math.max(0, 1 - (dx / (bodyHalfW + 0.03)) ** 2));
      let a = 0.03 + body * (0.42 + 0.14 * thickness);

      // Lungs.
      const lx = dx - side * lungCx;
      const le = Math.pow(Math.pow(Math.abs(lx) / lungHalfW, 2.4) + Math.pow(Math.abs(y - lungCy) / lungHalfH, 2.4), 1 / 2.4) - 1;
      let lung = soft(le * Math.min(lungHalfW, lungHalfH), edge);
      if (lung > 0) {
        const dome = an.diaphragmY + domeDepth * (lx / lungHalfW) ** 2 - (side < 0 ? 0.015 : 0);
        lung *= soft(y - dome, edge);
        lung *= soft(med - adx, edge);
        if (side === effusionSide) {
          const meniscus = effusionLevel - 0.04 * (adx / (lungCx + lungHalfW)) ** 2;
          lung *= soft(y - meniscus, edge * 3);
        }
      }
      if (lung > 0.5) {
        lungMinX = Math.min(lungMinX, i);
        lungMaxX = Math.max(lungMaxX, i);
      }

      // Heart (rotated ellipse).
      const hx = x - heartCx;
      const hy = y - heartCy;
      const ru = (hx * cosT + hy * sinT) / ha;
      const rv = (-hx * sinT + hy * cosT) / hb;
      const heart = soft((Math.sqrt(ru * ru + rv * rv) - 1) * hb, edge);
      if (heart > 0.5) {
        heartMinX = Math.min(heartMinX, i);
        heartMaxX = Math.max(heartMaxX, i);
      }

      // Air in the lungs darkens, except where the heart lies in front; vessel markings thicken towards the hilum.
      const hilum = Math.exp(-((adx - 0.08) ** 2) / 0.02);
      const markings = 0.045 * texture(x, y) + 0.025 * texture2(x, y);
      a -= lung * (1 - 0.9 * heart) * (0.34 - markings - 0.06 * hilum);
      if (y < an.diaphragmY) a += 0.05 * heart;

      // Abdomen below the domes is denser soft tissue.
      if (y > an.diaphragmY) a += 0.04 * body;

      // Spine with vertebral bodies (disc spaces every ~3.5% of height).
      if (adx < an.spineHalfWidth + edge) {
        const disc = 0.5 + 0.5 * Math.cos(((y - an.apexY) / 0.035) * 2 * Math.PI);
        a += soft(adx - an.spineHalfWidth, edge) * (0.1 + 0.05 * disc) * body;
      }

      // Posterior ribs: curves running down and out from the spine.
      if (adx > an.spineHalfWidth && adx < inner / 2 + 0.025 && y < an.diaphragmY + 0.03) {
        const d = adx - an.spineHalfWidth;
        const curve = an.ribSlope * d + 0.9 * d * d;
        const k = Math.round((y - curve - (an.apexY - 0.02)) / ribSpacing);
        if (k >= 0 && k < an.ribCount) {
          const yc = an.apexY - 0.02 + k * ribSpacing + curve;
          a += 0.085 * soft(Math.abs(y - yc) - ribHalfT, edge) * body;
        }
      }

      // Clavicles.
      const cy = an.apexY + 0.02 - 0.18 * (adx - 0.04);
      if (adx > 0.04 && adx < 0.33) a += 0.1 * soft(Math.abs(y - cy) - 0.009, edge) * body;

      for (const b of blobs) {
        const r = Math.hypot(x - b.x, y - b.y);
        a += b.hard ? b.amp * soft(r - b.r, edge) * lung : b.amp * Math.exp(-((r / b.r) ** 2)) * lung;
      }
      img[j * size + i] = a;
    }
  }

  // Exposure and noise.
  for (let j = 0; j < size; j++) {
    for (let i = 0; i < size; i++) {
      const k = j * size + i;
      const heel = 1 + ex.heel * ((i + 0.5) * px - 0.5);
      let v = clamp01((img[k]! - 0.5) * ex.contrast * heel + 0.5 + ex.brightness);
      v = Math.pow(v, ex.gamma) + ex.noise * rng.normal();
      img[k] = clamp01(v);
    }
  }

  const heartWidthPx = heartMaxX >= heartMinX ? heartMaxX - heartMinX + 1 : 0;
  const thoraxWidthPx = lungMaxX >= lungMinX ? lungMaxX - lungMinX + 1 : 0;
  return { size, image: img, heartWidthPx, thoraxWidthPx, measuredCtr: thoraxWidthPx ? heartWidthPx / thoraxWidthPx : 0 };
}
