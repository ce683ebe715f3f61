import * as tf from '@tensorflow/tfjs';
import { selectBackend } from './stages/lib/tf/backend.js';
await selectBackend('wasm');
const B = 16;
const shapes: Array<[number, number, number, number]> = [[128,1,16,1],[64,16,32,0],[32,32,64,0],[16,64,128,0]];
const minTime = (f: () => void, reps = 30): number => { let best = Infinity; for (let r=0;r<reps;r++){ const t=performance.now(); f(); best=Math.min(best, performance.now()-t);} return best; };
let totF=0, totW=0, totX=0;
for (const [H, Ci, Co] of shapes) {
  const x = tf.randomNormal([B, H, H, Ci]); const f = tf.randomNormal([3,3,Ci,Co]); const dy = tf.randomNormal([B,H,H,Co]);
  const fwd = minTime(() => tf.tidy(() => { tf.conv2d(x, f, 1, 'same').dataSync(); }));
  const dw = minTime(() => tf.tidy(() => { (tf as any).engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: 1, pad: 'same', dataFormat: 'NHWC', dilations: 1, filterShape: [3,3,Ci,Co] }).dataSync?.(); }));
  const dx = minTime(() => tf.tidy(() => { (tf as any).engine().runKernel('Conv2DBackpropInput', { dy, filter: f }, { strides: 1, pad: 'same', dataFormat: 'NHWC', dilations: 1, inputShape: [B,H,H,Ci] }); }));
  const tr = minTime(() => tf.tidy(() => { tf.transpose(x, [3,0,1,2]).dataSync(); }));
  const macs = B*H*H*9*Ci*Co/1e6;
  console.log(`H${H} Ci${Ci} Co${Co}: fwd ${fwd.toFixed(1)}ms dW ${dw.toFixed(1)}ms dX ${dx.toFixed(1)}ms transpose ${tr.toFixed(1)} | ${(macs/fwd).toFixed(0)} / ${(macs/dw).toFixed(0)} / ${(macs/dx).toFixed(0)} MMAC/ms`);
  totF+=fwd; totW+=dw; totX+=dx;
}
console.log('totals fwd', totF.toFixed(0), 'dW', totW.toFixed(0), 'dX', totX.toFixed(0));
