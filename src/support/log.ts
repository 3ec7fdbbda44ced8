/**
 * The job log: phases folded into groups, annotations for failures. A thin edge over @actions/core
 * so the pure modules can take a plain `Log` and tests can capture it.
 */
import * as core from '@actions/core';

export interface Log {
  info(message: string): void;
  warning(message: string): void;
  error(message: string): void;
  debug(message: string): void;
}

/** What a module that only reports progress needs of the job log. */
export type ProgressLog = Pick<Log, 'info' | 'warning'>;

/** A log that drops everything: the default where a caller gives none. */
export const quietLog: ProgressLog = { info() {}, warning() {} };

export const coreLog: Log = {
  info: (m) => core.info(m),
  warning: (m) => core.warning(m),
  error: (m) => core.error(m),
  debug: (m) => core.debug(m),
};

/** Run `fn` inside a folded log group named after the phase. */
export async function phase<T>(name: string, fn: () => Promise<T>): Promise<T> {
  core.startGroup(name);
  try {
    return await fn();
  } finally {
    core.endGroup();
  }
}
