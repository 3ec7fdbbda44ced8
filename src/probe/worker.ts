/**
 * The probers in a worker thread: their open-loop schedules keep time on its own event loop, so
 * the deploy's work on the main thread (SSH crypto, parsing) cannot delay a single send.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { startProbe, type ProbeOptions } from './prober.js';

const runs = (workerData as ProbeOptions[]).map((options) => startProbe(options));
parentPort!.on('message', (message: unknown) => {
  if (message !== 'stop') return;
  void Promise.all(runs.map((run) => run.stop())).then((results) => parentPort!.postMessage(results));
});
