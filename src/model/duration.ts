/**
 * Durations as users write them, in inputs and Compose files alike: `90` (bare = seconds), `1m30s`,
 * `500ms`, `1h`, `2.5s` (Go's units: h, m, s, ms, us/µs, ns). Returns milliseconds.
 */
const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 1e-3, µs: 1e-3, ns: 1e-6 };

export function parseDuration(value: unknown, what = 'duration'): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value * 1000;
  const s = typeof value === 'string' ? value.trim() : '';
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)/gy;
  let total = 0;
  let pos = 0;
  let m: RegExpExecArray | null;
  while (s && (m = re.exec(s))) {
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    pos = re.lastIndex;
  }
  if (!s || pos !== s.length) {
    throw new Error(`${what} is ${JSON.stringify(value)}: write a duration like "10s", "1m30s" or "500ms"`);
  }
  return Math.round(total * 1000) / 1000;
}
