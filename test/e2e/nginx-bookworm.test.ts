/**
 * nginx 1.22 (Debian bookworm), which has no keepalive_min_timeout: the reference config without
 * that line. The v1 -> v2 deploy drains as on newer nginx (1 s GETs and POSTs on the stopped replicas
 * complete, the probe's fresh lane loses nothing); a keep-alive request reused at the instant of a
 * reload may be reset, and the deploy warns about it.
 */
import { upstreamProxySuite } from './stacks/upstream-proxy.js';

upstreamProxySuite('nginx', {
  image: 'handoff-test-nginx:latest',
  version: 'bookworm',
  swapOnly: true,
  keepAliveResets: true,
  reloadAdvice: true,
  editConfig: (text) => {
    const out = text.replace(/^\s*keepalive_min_timeout .*;\n/m, '');
    if (out === text) throw new Error('examples/nginx/nginx.conf has no keepalive_min_timeout line: update this test');
    return out;
  },
});
