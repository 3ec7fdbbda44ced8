/**
 * GitHub Deployments for a deploy: one deployment for the ref and environment, status `in_progress`
 * with the run's log URL while it runs, then `success` (with the environment URL) or `failure`.
 * GitHub marks the environment's older deployments `inactive` on success (auto_inactive, default).
 *
 * Decision: this is reporting, not the deploy. Without a token or an environment it is skipped with
 * an info line; an API error (bad token, missing `deployments: write`, GitHub down) is a warning and
 * never fails or blocks the deploy — every call has a timeout. The token is only ever handed to
 * Octokit; it appears in no log line.
 */
import type { getOctokit } from '@actions/github';
import { coreLog, type Log } from '../support/log.js';

export type DeploymentState = 'success' | 'failure';

export interface DeploymentRequest {
  token?: string;
  owner: string;
  repo: string;
  /** The commit sha (or ref) deployed. */
  ref: string;
  environment?: string;
  description?: string;
  /** The job's log URL, shown on the deployment. */
  logUrl?: string;
  environmentUrl?: string;
  transient?: boolean;
  /** API base URL; default GITHUB_API_URL (GHES) or api.github.com. Tests point it at a local server. */
  baseUrl?: string;
  timeoutMs?: number;
  log: Pick<Log, 'info' | 'warning'>;
}

export interface Deployment {
  id: number;
  finish(state: DeploymentState, environmentUrl?: string, logUrl?: string): Promise<void>;
}
export type DeploymentHandle = Deployment;

/** The parts of the action's inputs and run context a deployment needs (structural, to stay decoupled). */
export interface DeploymentInputs {
  githubToken?: string;
  environment?: string;
  environmentUrl?: string;
  project: string;
  rollback?: boolean;
}
export interface DeploymentRun {
  sha: string;
  runUrl: string;
}

/** The request from the action's inputs, run context and environment (GITHUB_REPOSITORY, GITHUB_API_URL). */
export function deploymentRequest(
  inputs: DeploymentInputs,
  run: DeploymentRun,
  env: NodeJS.ProcessEnv,
  log: Pick<Log, 'info' | 'warning'> = coreLog,
): DeploymentRequest {
  const [owner = '', repo = ''] = (env.GITHUB_REPOSITORY ?? '').split('/');
  return {
    token: inputs.githubToken,
    owner,
    repo,
    ref: run.sha,
    environment: owner && repo ? inputs.environment : undefined,
    description: `handoff ${inputs.rollback ? 'rollback' : 'deploy'} of ${inputs.project}`,
    logUrl: run.runUrl || undefined,
    environmentUrl: inputs.environmentUrl,
    baseUrl: env.GITHUB_API_URL,
    log,
  };
}

function apiError(e: unknown): string {
  const err = e as { status?: number; message?: string };
  const hint = err.status === 403 || err.status === 404 ? ' (does the token have `deployments: write` permission?)' : '';
  return `${err.status ? `HTTP ${err.status}: ` : ''}${err.message ?? String(e)}${hint}`;
}

/** Octokit for the request's API, and the options each call gets: its own timeout. */
interface DeploymentApi {
  octokit: ReturnType<typeof getOctokit>;
  request: () => { signal: AbortSignal };
}

/** Octokit is loaded only when a deployment is made: it is most of the bundle, and every run loads the bundle. */
async function deploymentApi(req: DeploymentRequest, token: string): Promise<DeploymentApi> {
  const timeoutMs = req.timeoutMs ?? 15_000;
  const baseUrl = req.baseUrl || process.env.GITHUB_API_URL || 'https://api.github.com';
  const { getOctokit: octokitFor } = await import('@actions/github');
  return { octokit: octokitFor(token, { baseUrl }), request: () => ({ signal: AbortSignal.timeout(timeoutMs) }) };
}

/** Create the deployment; its id, or undefined (with a warning) when the API refused. */
async function createDeployment(api: DeploymentApi, req: DeploymentRequest, environment: string): Promise<number | undefined> {
  try {
    const created = await api.octokit.rest.repos.createDeployment({
      owner: req.owner,
      repo: req.repo,
      ref: req.ref,
      environment,
      description: req.description?.slice(0, 140),
      auto_merge: false,
      required_contexts: [],
      ...(req.transient !== undefined ? { transient_environment: req.transient } : {}),
      request: api.request(),
    });
    const data = created.data as { id?: number; message?: string };
    if (typeof data.id !== 'number') throw new Error(data.message ?? 'GitHub did not create the deployment');
    return data.id;
  } catch (e) {
    req.log.warning(`could not create a GitHub Deployment for ${environment}: ${apiError(e)}; the deploy goes on without it`);
    return undefined;
  }
}

/** Post one status of deployment `id`; an API error is a warning. */
async function setDeploymentStatus(
  api: DeploymentApi,
  req: DeploymentRequest,
  id: number,
  state: 'in_progress' | DeploymentState,
  environmentUrl?: string,
  logUrl?: string,
): Promise<void> {
  try {
    await api.octokit.rest.repos.createDeploymentStatus({
      owner: req.owner,
      repo: req.repo,
      deployment_id: id,
      state,
      ...(logUrl ? { log_url: logUrl } : {}),
      ...(environmentUrl ? { environment_url: environmentUrl } : {}),
      description: req.description?.slice(0, 140),
      request: api.request(),
    });
  } catch (e) {
    req.log.warning(`could not set GitHub Deployment ${id} to ${state}: ${apiError(e)}`);
  }
}

/** Create the deployment and mark it in_progress; undefined when skipped or when the API refused. */
export async function startDeployment(req: DeploymentRequest): Promise<Deployment | undefined>;
export async function startDeployment(
  inputs: DeploymentInputs,
  run: DeploymentRun,
  env?: NodeJS.ProcessEnv,
): Promise<Deployment | undefined>;
export async function startDeployment(
  first: DeploymentRequest | DeploymentInputs,
  run?: DeploymentRun,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Deployment | undefined> {
  const req = run ? deploymentRequest(first as DeploymentInputs, run, env) : (first as DeploymentRequest);
  const { log, environment } = req;
  if (!req.token || !environment) {
    log.info(`GitHub Deployment skipped: ${!req.token ? 'no github_token' : 'no environment'} given`);
    return undefined;
  }
  const api = await deploymentApi(req, req.token);
  const id = await createDeployment(api, req, environment);
  if (id === undefined) return undefined;

  await setDeploymentStatus(api, req, id, 'in_progress', undefined, req.logUrl);
  log.info(`GitHub Deployment ${id} for ${environment} is in progress`);
  return {
    id,
    async finish(state, environmentUrl = req.environmentUrl, logUrl = req.logUrl) {
      await setDeploymentStatus(api, req, id, state, environmentUrl, logUrl);
      log.info(`GitHub Deployment ${id}: ${state}`);
    },
  };
}

/** Finish a deployment started with startDeployment; a no-op when it was skipped. */
export async function finishDeployment(
  deployment: Deployment | undefined,
  state: DeploymentState,
  environmentUrl?: string,
  logUrl?: string,
): Promise<void> {
  await deployment?.finish(state, environmentUrl, logUrl);
}
