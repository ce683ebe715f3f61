// Worker-thread entry: render, encode and write one phantom image per request (see pool.ts).
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parentPort } from 'node:worker_threads';
import sharp from 'sharp';
import type { SynthImage } from './cohort.js';
import type { ImageFormat } from './layouts.js';
import { synthesizeImage } from './render.js';

export interface RenderRequest {
  id: number;
  img: SynthImage;
  file: string;
  size: number;
  format: ImageFormat;
  monochrome1Fraction: number;
  seed: string;
  compression: 'none' | 'jpeg2000';
}
export type RenderReply = { id: number; measuredCtr: number; photometric?: string } | { id: number; error: string };

sharp.concurrency(1);
parentPort?.on('message', (q: RenderRequest) => {
  (async () => {
    const r = await synthesizeImage(q.img, q.size, q.format, q.monochrome1Fraction, q.seed, q.compression);
    await mkdir(dirname(q.file), { recursive: true });
    await writeFile(q.file, r.bytes);
    return r;
  })().then(
    (r) => parentPort!.postMessage({ id: q.id, measuredCtr: r.measuredCtr, photometric: r.photometric } satisfies RenderReply),
    (e: Error) => parentPort!.postMessage({ id: q.id, error: e.message } satisfies RenderReply),
  );
});
