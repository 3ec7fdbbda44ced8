/**
 * Issue #17 acceptance on rootful Podman (the system's engine, /run/podman/podman.sock, reached by the
 * deploy user through the bench's podman group). Named with podman_socket: the deploy user's own
 * (rootless) socket would come first. The scenarios are in stacks/podman-suite.ts (`nameSocket: false`
 * with the user's socket runs them on rootless Podman: docs/podman-on-the-bench.md, section 5).
 */
import { podmanSuite } from './stacks/podman-suite.js';

podmanSuite({ socket: '/run/podman/podman.sock', nameSocket: true, label: 'podman' });
