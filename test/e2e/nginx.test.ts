/**
 * Issue #14 acceptance for nginx: one stack (examples/nginx/, test/e2e/stacks/nginx.yaml), the app stopped
 * by SIGKILL; v1 -> v2 under load with 1 s requests in flight, an unhealthy v3, a broken config.
 * The scenarios are in stacks/upstream-proxy.ts, shared with the Caddy files. The newest nginx in
 * Debian's archive (sid; 1.30 when written) with the reference config as it is: nothing may fail, not
 * even a keep-alive request at a reload (keepalive_min_timeout).
 */
import { upstreamProxySuite } from './stacks/upstream-proxy.js';

upstreamProxySuite('nginx', { version: 'sid' });
