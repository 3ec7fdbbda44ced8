/**
 * How fast the rollout went against its floor (model/floor.ts), and how many round trips to the
 * host it took: a line for the log and a table for the job summary.
 */
import { rolloutFloor, speedLine, type BatchSpan } from '../model/floor.js';
import type { TimelineEvent } from '../model/timeline.js';

const s = (ms: number) => (ms / 1000).toFixed(1);

/** The summary's speed section: per batch, what it took against its floor, and the round trips. */
export function renderSpeed(batches: BatchSpan[], events: TimelineEvent[], deployRoundTrips?: number): string {
  const f = rolloutFloor(batches, events);
  if (!f.batches.length) return '';
  const rows = f.batches.map((b) => {
    const p = b.parts;
    const ratio = b.floorMs > 0 ? `${(b.actualMs / b.floorMs).toFixed(2)}x` : '';
    return `| ${b.service} ${b.index + 1}/${b.of}${b.ok ? '' : ' (failed)'} | ${s(b.actualMs)} s | ${s(b.floorMs)} s | ${s(p.health)} | ${s(p.up)} | ${s(p.drain)} | ${s(p.stop)} | ${s(p.monitor)} | ${ratio} | ${b.roundTrips ?? ''} |`;
  });
  const lines = [
    speedLine(f)! + (deployRoundTrips !== undefined ? `; ${deployRoundTrips} in the whole deploy.` : '.'),
    '',
    'The floor is what each batch physically needs: start to healthy (Docker’s clock), healthy to UP in the proxy, drain, stop, `monitor`; plus `update_config.delay` between batches.',
    '',
    '| batch | took | floor | start → healthy | → UP | drain | stop | monitor | took / floor | round trips |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
  ];
  return lines.join('\n');
}
