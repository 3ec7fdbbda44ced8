/**
 * The prober in a worker thread: its open-loop schedule keeps time on its own event loop, so the
 * deploy's work on the main thread (SSH crypto, parsing) cannot delay a single send.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { startProbe, type ProbeOptions } from './probe/prober.js';

const run = startProbe(workerData as ProbeOptions);
parentPort!.on('message', (message: unknown) => {
  if (message !== 'stop') return;
  void run.stop().then((result) => parentPort!.postMessage(result));
});
