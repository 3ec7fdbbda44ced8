/**
 * What the rollout asks of the reverse proxy. HAProxy implements it through its Runtime API, Caddy
 * and nginx through an upstream file handoff owns (proxy/upstreams/); without a driver, the
 * degraded gate relies on retries and health checks alone.
 */
export interface Replica {
  /** Full Docker container id. */
  id: string;
  /** Container name, for logs. */
  name: string;
  /** The container's IP on the network the proxy shares with it. */
  ip: string;
}

export interface ProxyGate {
  /** True when the gate really drains (false for the degraded gate): shown in the plan and summary. */
  readonly drains: boolean;
  /**
   * Before new replicas start: keep the proxy from sending them traffic on its own (a slot DNS just
   * filled counts as UP before its first health check). `current` are the service's replicas now,
   * which tell where the service lives in the proxy. waitUp lets each new replica in.
   */
  park(service: string, current: Replica[]): Promise<void>;
  /** The service is done (or failed): slots parked for it and still empty go back to service. */
  unpark(service: string): Promise<void>;
  /**
   * Resolve when the proxy sends traffic to every one of these new replicas (UP), reject at the
   * deadline. `replacing`: the old replicas drain() is called with next, so a gate whose every
   * change costs a config reload may list the new ones in that same change.
   */
  waitUp(service: string, replicas: Replica[], deadline: number, replacing?: Replica[]): Promise<void>;
  /** Take these old replicas out of rotation and wait until their in-flight requests finished (or the drain timeout). */
  drain(service: string, replicas: Replica[]): Promise<void>;
  /** The drained replicas are gone: return their proxy slots to service so DNS can hand them new replicas. */
  release(service: string, replicas: Replica[]): Promise<void>;
  /**
   * A release's files were just copied into app/ (a rollback): files the gate owns there (Caddy's and
   * nginx's upstream lists, which activation resets to the uploaded seeds) are written back.
   */
  activated?(): Promise<void>;
}

/** The gate used when the proxy offers no Runtime API: nothing to wait on or drain. */
export const degradedGate: ProxyGate = {
  drains: false,
  async park() {},
  async unpark() {},
  async waitUp() {},
  async drain() {},
  async release() {},
};
