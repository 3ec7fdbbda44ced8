/** The workflow run a deploy belongs to, from the runner's GITHUB_* variables. */
import type { RunContext } from '../phases/session.js';

export function runContext(env: NodeJS.ProcessEnv): RunContext {
  const server = env.GITHUB_SERVER_URL ?? 'https://github.com';
  const repo = env.GITHUB_REPOSITORY ?? '';
  const runId = env.GITHUB_RUN_ID ?? `local-${process.pid}`;
  return {
    sha: env.GITHUB_SHA ?? 'unknown',
    ref: env.GITHUB_REF ?? '',
    actor: env.GITHUB_ACTOR ?? 'unknown',
    runId: `${runId}-${env.GITHUB_RUN_ATTEMPT ?? '1'}`,
    runUrl: repo ? `${server}/${repo}/actions/runs/${runId}` : '',
    workspace: env.GITHUB_WORKSPACE ?? process.cwd(),
  };
}
