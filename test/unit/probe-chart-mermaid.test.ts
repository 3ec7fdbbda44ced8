/**
 * The probe chart must render on GitHub: parse it with Mermaid's own parser (v11, the one GitHub
 * uses), for charts the report module renders and for the committed example summary.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { JSDOM } from 'jsdom';
import { renderProbeChart } from '../../src/probe/report.js';
import { summarize } from '../../src/probe/stats.js';
import type { ProbeRecord } from '../../src/probe/record.js';
import { Timeline } from '../../src/model/timeline.js';

async function mermaidParser(): Promise<(text: string) => Promise<{ diagramType: string }>> {
  const dom = new JSDOM('<!doctype html><body></body>');
  Object.assign(globalThis, { window: dom.window, document: dom.window.document });
  Object.defineProperty(globalThis, 'navigator', { value: dom.window.navigator, configurable: true });
  const { default: mermaid } = await import('mermaid');
  return (text) => mermaid.parse(text) as Promise<{ diagramType: string }>;
}

const blocks = (md: string) => [...md.matchAll(/```mermaid\n([\s\S]*?)```/g)].map((m) => m[1]!);

function records(seconds: number, rate: number, lostAt: number[]): ProbeRecord[] {
  const out: ProbeRecord[] = [];
  for (let i = 0; i < seconds * rate; i++) {
    const at = 1_000_000 + (i * 1000) / rate;
    const lost = lostAt.includes(Math.floor(i / rate));
    out.push({
      seq: i,
      lane: i % 2 ? 'fresh' : 'keepalive',
      scheduledAt: at,
      sentAt: at,
      doneAt: at + 5,
      latencyMs: 5,
      outcome: lost ? 'reset' : 'ok',
      status: lost ? undefined : 200,
    } as ProbeRecord);
  }
  return out;
}

test('rendered probe charts parse as Mermaid xychart, short and long runs, with events', async () => {
  const parse = await mermaidParser();
  for (const seconds of [5, 300]) {
    const timeline = new Timeline(() => 1_000_000 + 2500);
    timeline.add('drain', { service: 'app', container: 'p_app_1' });
    const summary = summarize(records(seconds, 10, [3]), { startedAt: 1_000_000, endedAt: 1_000_000 + seconds * 1000 });
    const md = renderProbeChart(summary, timeline);
    const [chart] = blocks(md);
    assert.ok(chart, 'the chart is a mermaid block');
    assert.equal((await parse(chart)).diagramType, 'xychart');
  }
});

test('the example summary in docs parses, and a broken chart is rejected', async () => {
  const parse = await mermaidParser();
  const example = readFileSync(new URL('../../docs/summary-example.md', import.meta.url), 'utf8');
  const charts = blocks(example);
  assert.equal(charts.length, 1);
  assert.equal((await parse(charts[0]!)).diagramType, 'xychart');
  await assert.rejects(parse('xychart-beta\n  bar [1, 2,,]'));
});
