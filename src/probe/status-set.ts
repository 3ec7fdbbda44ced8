/**
 * The set of HTTP statuses a probe request may answer with, written as users write it in the
 * `probe_expect_status` input: "200-399", "200,204", "200,300-399".
 */
export interface StatusSet {
  has(status: number): boolean;
  /** Canonical text, for messages ("200-399"). */
  readonly text: string;
}

export function parseStatusSet(text: string): StatusSet {
  const ranges: Array<[number, number]> = [];
  const parts = text.split(',').map((p) => p.trim());
  if (parts.every((p) => p === '')) throw new Error('empty status set (example: 200-399 or 200,204)');
  for (const part of parts) {
    if (part === '') continue;
    const m = /^(\d{3})(?:\s*-\s*(\d{3}))?$/.exec(part);
    if (!m) throw new Error(`"${part}" in status set "${text}" is not a status or a range (example: 200-399)`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    for (const n of [lo, hi]) {
      if (n < 100 || n > 599) throw new Error(`status ${n} in "${text}" is outside 100-599`);
    }
    if (hi < lo) throw new Error(`range "${part}" in "${text}" is reversed`);
    ranges.push([lo, hi]);
  }
  const canonical = ranges.map(([lo, hi]) => (lo === hi ? `${lo}` : `${lo}-${hi}`)).join(',');
  return {
    text: canonical,
    has: (status) => ranges.some(([lo, hi]) => status >= lo && status <= hi),
  };
}
