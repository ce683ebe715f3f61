// Preprocessing throughput: 1,000 synthetic 1024×1024 8-bit chest X-ray PNGs → 224×224 uint8 shards through the
// real preprocess/images kind (worker pool sized to the cores given). Baseline: the same decode + resize with sharp,
// one image at a time on the main thread. Target: ≥ 100 images/s on 2 cores.
//   npm run bench -- preprocess [--images N] [--cpus N]
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { encodeGrayPng, quantize } from '../stages/lib/png.js';
import { run as preprocess } from '../stages/preprocess/images/run.js';
import { drawAnatomy, drawCtr } from '../stages/synth/cxr/anatomy.js';
import { renderPhantom } from '../stages/synth/cxr/phantom.js';
import { createRng } from '../stages/synth/cxr/prng.js';
import { fakeContext } from '../test/support/context.js';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const N = arg('images', 1000);
const CPUS = arg('cpus', Math.min(2, availableParallelism()));
const SIZE = 1024;
const OUT = 224;

/** Generate the inputs once (cached across runs): 12 rendered phantoms, each file with its own noise. */
async function inputs(dir: string): Promise<string[]> {
  const names = Array.from({ length: N }, (_, i) => `img${String(i).padStart(5, '0')}.png`);
  if (existsSync(dir) && (await readdir(dir)).filter((f) => f.endsWith('.png')).length >= N) return names;
  await mkdir(dir, { recursive: true });
  const rng = createRng('bench-preprocess');
  const bases = Array.from({ length: 12 }, (_, k) => {
    const age = k < 4 ? 0.5 + k * 2 : 20 + k * 6;
    const an = drawAnatomy(rng, age, drawCtr(rng, age, k % 5 === 0));
    return renderPhantom({ size: SIZE, anatomy: an, findings: [], exposure: { contrast: 1.1, brightness: 0, gamma: 1, noise: 0.01, heel: 0.05 } }, rng).image;
  });
  process.stderr.write(`generating ${N} ${SIZE}² PNGs in ${dir} …\n`);
  const noisy = new Float32Array(SIZE * SIZE);
  for (const [i, name] of names.entries()) {
    const base = bases[i % bases.length]!;
    for (let p = 0; p < noisy.length; p++) noisy[p] = base[p]! + (rng.next() - 0.5) * 0.02;
    await writeFile(join(dir, name), await encodeGrayPng({ width: SIZE, height: SIZE, depth: 8, data: quantize(noisy, 8) }, 3));
  }
  return names;
}

async function main(): Promise<void> {
  const root = join(tmpdir(), `pipe-bench-preprocess-${SIZE}-${N}`);
  const files = await inputs(join(root, 'png'));
  await writeFile(join(root, 'meta.csv'), 'image_id,path\n' + files.map((f) => `${f},png/${f}`).join('\n') + '\n');

  // Ours: the stage, as the pipeline runs it.
  const ctx = fakeContext(root, { dataset: './', layout: 'table', metadata: 'meta.csv', out: 'shards/', size: OUT, skip_unreadable: false }, { cpus: CPUS });
  const t0 = performance.now();
  const cpu0 = process.cpuUsage(); // process-wide: includes the worker threads
  await preprocess(ctx);
  const ours = N / ((performance.now() - t0) / 1000);
  const cpu = process.cpuUsage(cpu0);
  const cpuPerImage = (cpu.user + cpu.system) / 1e6 / N;

  // Baseline: sequential sharp decode + resize on the main thread (sharp's default thread pool).
  const subset = files.slice(0, Math.min(N, 200));
  const t1 = performance.now();
  for (const f of subset) await sharp(join(root, 'png', f)).toColourspace('b-w').resize(OUT, OUT, { fit: 'fill' }).raw().toBuffer();
  const base = subset.length / ((performance.now() - t1) / 1000);

  await rm(join(root, 'shards'), { recursive: true, force: true });
  console.log(`BENCH preprocess_1024_to_224 ${ours.toFixed(1)} img/s vs sequential_sharp ${(ours / base).toFixed(2)}`);
  console.log(`# ${N} images, ${CPUS} worker(s) on ${availableParallelism()} core(s); baseline ${base.toFixed(1)} img/s over ${subset.length} images`);
  // On a shared machine wall time depends on the neighbours; CPU time per image does not (much).
  console.log(`# ${(cpuPerImage * 1000).toFixed(1)} ms CPU per image → ${(CPUS / cpuPerImage).toFixed(0)} img/s if ${CPUS} cores were ours alone`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
