/**
 * One host a deploy changes: its connection, where handoff keeps the project on it, and the Compose
 * it runs. A deploy has one target today; a fleet (several hosts) runs the phases per target, each
 * with its own lock, releases and proxy, so a phase that only touches the host takes a Target.
 */
import type { ComposeFlavor } from '../engine/docker/compose-cli.js';
import type { Remote } from './remote.js';

export interface Target {
  /** The host, as the rest of the action sees it (SSH today). */
  remote: Remote;
  /** The project's directory on the host: releases/, app/, current, lock/, audit.log. */
  remoteDir: string;
  /** Which Compose the host runs. */
  flavor: ComposeFlavor;
  /** `unix://<socket>` when the engine is Podman's API socket, not the docker CLI's default endpoint. */
  dockerHost?: string;
}
