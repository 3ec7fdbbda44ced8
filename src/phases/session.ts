/**
 * What every phase of one deploy shares: the run, the host connection, the Compose flavor, the
 * remote directory, the timeline and the report; and where a release's files sit on the host.
 */
import * as core from '@actions/core';
import { posix } from 'node:path';
import type { ComposeProject } from '../engine/docker/compose-cli.js';
import type { Inputs } from '../action/inputs.js';
import type { Log } from '../support/log.js';
import type { Target } from '../host/target.js';
import type { DeployReport } from '../action/report.js';
import type { Timeline } from '../model/timeline.js';
import type { RoundTrips } from '../host/round-trips.js';

export interface RunContext {
  sha: string;
  ref: string;
  actor: string;
  runId: string;
  runUrl: string;
  workspace: string;
}

/** One deploy on one target (host/target.ts: its remote, remoteDir and Compose flavor). */
export interface Session extends Target {
  /** Run when the deploy ends, however it ends (e.g. stop a probe still running after an error). */
  cleanups: Array<() => Promise<void>>;
  inputs: Inputs;
  run: RunContext;
  timeline: Timeline;
  log: Log;
  report: DeployReport;
  /** Counts the round trips `remote` makes (the lock and its heartbeat aside). */
  roundTrips?: RoundTrips;
  /** Set from the first change to the live stack until the release is recorded: what the post step must finish. */
  interrupted?: InterruptedDeploy;
}

/** What the post step needs to restore the stack when the main step ends midway (saved as state `deploy`). */
export interface InterruptedDeploy {
  releaseId: string;
  /** The release that was serving before, to restore; none on a first deploy. */
  previous?: string;
}

/** From here until `settled`, an end of the main step leaves the post step a stack to restore. */
export function markInterrupted(s: Session, interrupted: InterruptedDeploy): void {
  s.interrupted = interrupted;
  core.saveState('deploy', JSON.stringify(interrupted));
}

/** The release is recorded: nothing is left for the post step. */
export function settled(s: Session): void {
  s.interrupted = undefined;
  core.saveState('deploy', '');
}

/** Where a release's Compose files and env file sit on the host, and where Compose resolves paths. */
export function stackOf(remoteDir: string, composeFiles: string[], base: 'app' | { release: string }, project: string): ComposeProject {
  const root = base === 'app' ? posix.join(remoteDir, 'app') : posix.join(remoteDir, 'releases', base.release);
  return {
    project,
    files: composeFiles.map((f) => posix.join(root, f)),
    envFile: posix.join(root, '.env'),
    // Always the live directory: bind-mount paths, and so config hashes, are those of app/.
    projectDirectory: posix.join(remoteDir, 'app', posix.dirname(composeFiles[0]!)),
  };
}

/**
 * How to read a release's desired config: loaded from the release's own directory (its env files),
 * hashed as the project will run from app/ (see config-hash.ts).
 */
export function planningView(remoteDir: string, composeFiles: string[], release: string, project: string) {
  const releaseRoot = posix.join(remoteDir, 'releases', release);
  const hashAs = stackOf(remoteDir, composeFiles, { release }, project);
  const load = { ...hashAs, projectDirectory: posix.join(releaseRoot, posix.dirname(composeFiles[0]!)) };
  return { load, hashAs, relocation: { from: releaseRoot, to: posix.join(remoteDir, 'app') } };
}
