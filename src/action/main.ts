/**
 * The action's main step: read and validate the inputs, mask every secret, deploy, then write the
 * outputs and the job summary whatever happened.
 */
import * as core from '@actions/core';
import { deploy } from '../phases/deploy.js';
import { runContext } from './run-context.js';
import { readInputs, secretsOf, type Inputs } from './inputs.js';
import { newReport, renderSummary, reportOutputs, type DeployReport } from './report.js';
import { startDeployment, type DeploymentHandle } from './deployments.js';

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
