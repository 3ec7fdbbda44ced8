/** Caddy 2.6 (Debian bookworm and trixie): the v1 -> v2 deploy, the core of the guarantee, as on the newest Caddy. */
import { upstreamProxySuite } from './stacks/upstream-proxy.js';

upstreamProxySuite('caddy', {
  image: 'handoff-test-caddy:latest',
  version: 'bookworm',
  swapOnly: true,
  keepAliveResets: true,
  // Caddy before 2.8 has no socket mode in the admin address (it would be part of the file name):
  // the stack's umask 0000 makes the socket writable instead.
  editConfig: (text) => {
    const out = text.replace('admin.sock|0222', 'admin.sock');
    if (out === text) throw new Error('examples/caddy/Caddyfile has no "admin.sock|0222": update this test');
    return out;
  },
});
