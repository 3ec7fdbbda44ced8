/**
 * The action's main step: read and validate the inputs, mask every secret, deploy, then write the
 * outputs and the job summary whatever happened.
 */
import * as core from '@actions/core';
import { deploy, type RunContext } from './deploy.js';
import { readInputs, secretsOf, type Inputs } from './inputs.js';
import { newReport, renderSummary, reportOutputs, type DeployReport } from './report.js';
import { startDeployment, type DeploymentHandle } from './deployments.js';

function runContext(env: NodeJS.ProcessEnv): RunContext {
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

export async function run(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  let inputs: Inputs;
  try {
    inputs = readInputs((name) => core.getInput(name), env);
  } catch (e) {
    core.setFailed(e instanceof Error ? e.message : String(e));
    return;
  }
  for (const s of secretsOf(inputs)) core.setSecret(s);

  const ctx = runContext(env);
  const report: DeployReport = newReport(inputs.project, inputs.dryRun ? 'dry-run' : inputs.rollback ? 'rollback' : 'deploy');
  let deployment: DeploymentHandle | undefined;
  try {
    if (!inputs.dryRun) deployment = await startDeployment(inputs, ctx, env);
    await deploy(inputs, ctx, report);
  } catch (e) {
    report.error = e instanceof Error ? e.message : String(e);
  } finally {
    report.finishedAt = Date.now();
    await deployment?.finish(report.error ? 'failure' : 'success');
    for (const [name, value] of Object.entries(reportOutputs(report))) core.setOutput(name, value);
    try {
      await core.summary.addRaw(renderSummary(report), true).write();
    } catch (e) {
      core.warning(`could not write the job summary: ${String(e)}`);
    }
    if (report.error) core.setFailed(report.error);
  }
}
