/** Caddy 2.6 (Debian bookworm and trixie): the v1 -> v2 deploy, the core of the guarantee, as on the newest Caddy. */
import { upstreamProxySuite } from './stacks/upstream-proxy.js';

upstreamProxySuite('caddy', { version: 'bookworm', swapOnly: true, keepAliveResets: true });
