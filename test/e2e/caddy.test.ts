/**
 * Issue #14 acceptance for Caddy: one stack (examples/caddy/, test/e2e/stacks/caddy.yaml), the app stopped
 * by SIGKILL; v1 -> v2 under load with 1 s requests in flight, an unhealthy v3, a broken config.
 * The scenarios are in stacks/upstream-proxy.ts, shared with the nginx files. The newest Caddy in
 * Debian's archive (sid; 2.11 when written).
 */
import { upstreamProxySuite } from './stacks/upstream-proxy.js';

// Every Caddy config load (2.6 to 2.11) closes idle client keep-alive connections: see upstreamProxySuite.
upstreamProxySuite('caddy', { version: 'sid', keepAliveResets: true });
