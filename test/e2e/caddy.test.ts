/**
 * Issue #14 acceptance for Caddy: one stack (examples/caddy/, test/e2e/stacks/caddy.yaml), the app stopped
 * by SIGKILL; v1 -> v2 under load with 1 s requests in flight, an unhealthy v3, a broken config.
 * The scenarios are in stacks/upstream-proxy.ts, shared with the nginx file.
 */
import { upstreamProxySuite } from './stacks/upstream-proxy.js';

// Caddy 2.6 closes idle client keep-alive connections at every config load: see upstreamProxySuite.
upstreamProxySuite('caddy', { keepAliveResets: true });
