// Worker-thread entry: load images on request. One libvips thread per worker, so N workers use N cores.
import { parentPort } from 'node:worker_threads';
import sharp from 'sharp';
import { loadImage } from './load.js';

export interface LoadRequest {
  id: number;
  file: string;
  size: number;
  maxPixels: number;
}
export type LoadReply = { id: number; pixels: Uint8Array } | { id: number; error: string };

sharp.concurrency(1);
parentPort?.on('message', (req: LoadRequest) => {
  loadImage(req.file, req.size, { maxPixels: req.maxPixels }).then(
    (pixels) => {
      // Copy into a transferable buffer of exactly this image (sharp's may be a slice of a pool).
      const own = new Uint8Array(pixels);
      parentPort!.postMessage({ id: req.id, pixels: own } satisfies LoadReply, [own.buffer]);
    },
    (e: Error) => parentPort!.postMessage({ id: req.id, error: e.message } satisfies LoadReply),
  );
});
