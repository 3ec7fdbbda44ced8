/**
 * What the rollout asks of the container engine: a service's replicas and their lifecycle.
 * Docker with Compose is the first implementation (engine/docker/); Podman and Swarm are next, each
 * a folder beside it. The rollout never builds an engine command itself.
 */
import type { ContainerInfo } from './docker/containers.js';
import type { HealthResult, WaitOptions } from './docker/health.js';
import type { Timeline } from '../model/timeline.js';

export type { ContainerInfo, HealthResult, WaitOptions };

export interface Engine {
  /** Every container of the service in the project, running or not. */
  replicas(service: string): Promise<ContainerInfo[]>;
  /** The current state of these containers; one that is gone is left out. */
  inspect(ids: string[]): Promise<ContainerInfo[]>;
  /** Start new replicas until the service has `count`; the running ones are kept as they are. */
  scaleTo(service: string, count: number, onOutput?: (chunk: string) => void): Promise<void>;
  /**
   * Create, without starting, new replicas until the service has `count` containers; returns every
   * container of the service after. The rollout makes the next batch's this way during a monitor.
   * An engine that cannot leaves it (and start) out: each batch then scales up itself.
   */
  createAhead?(service: string, count: number): Promise<ContainerInfo[]>;
  /** Start containers createAhead made; returns their state after (one that is gone is left out). */
  start?(ids: string[]): Promise<ContainerInfo[]>;
  /** Stop with the grace period (seconds), then remove: by id, never by scaling down. */
  stopAndRemove(ids: string[], graceS: number): Promise<void>;
  /** Resolve when every container is healthy (or has stayed running for the settle time without a healthcheck). */
  waitHealthy(ids: string[], deadline: number, timeline: Timeline, options?: WaitOptions): Promise<HealthResult>;
  /** Watch running containers for `ms`: a crash, restart or unhealthy state within it is a failure. */
  monitor(ids: string[], ms: number, timeline: Timeline, options?: WaitOptions): Promise<HealthResult>;
  /** Health output and recent logs of failed containers, for the job log. */
  diagnostics(containers: ContainerInfo[]): Promise<string>;
}
