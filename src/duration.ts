/**
 * Durations as users write them in inputs and Compose files: `90`, `1m30s`, `500ms`, `1h`, `2.5s`.
 * A bare number means `bareUnit` (seconds for inputs). Returns milliseconds.
 */
export function parseDuration(text: string | number, bareUnit: 's' | 'ms' = 's'): number {
  if (typeof text === 'number') return bareUnit === 's' ? text * 1000 : text;
  const s = text.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * (bareUnit === 's' ? 1000 : 1);
  const unitMs: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, µs: 0.001, ns: 0.000001 };
  let total = 0;
  let rest = s;
  const part = /^(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/;
  if (!rest) throw new Error('empty duration');
  while (rest) {
    const m = part.exec(rest);
    if (!m) throw new Error(`"${text}" is not a duration (examples: 30s, 1m30s, 500ms)`);
    total += Number(m[1]) * unitMs[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  return Math.round(total);
}
