// Worker-thread entry of one model replica (data-parallel.ts starts these): its own tfjs engine and backend, requests
// served one at a time in arrival order.
import { parentPort } from 'node:worker_threads';
import { ReplicaHost, transferables, type ReplicaEnvelope, type ReplicaReply } from './replica-protocol.js';

const host = new ReplicaHost();
let queue: Promise<void> = Promise.resolve();

parentPort?.on('message', (req: ReplicaEnvelope) => {
  queue = queue.then(async () => {
    let reply: ReplicaReply;
    let transfer: ArrayBuffer[] = [];
    try {
      const value = await host.handle(req);
      transfer = transferables(value);
      reply = { id: req.id, value };
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      reply = { id: req.id, error: err.message, ...(err.stack ? { stack: err.stack } : {}) };
    }
    parentPort!.postMessage(reply, transfer);
  });
});
