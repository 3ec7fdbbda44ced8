/** A ProgressLog that keeps each line, warnings prefixed "warning: ", for assertions. */
import type { ProgressLog } from '../../src/support/log.js';

export function collectLog(lines: string[]): ProgressLog {
  return { info: (m) => void lines.push(m), warning: (m) => void lines.push(`warning: ${m}`) };
}
