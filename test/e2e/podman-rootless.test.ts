/**
 * Issue #17 on rootless Podman: the deploy user's own engine and socket
 * ($XDG_RUNTIME_DIR/podman/podman.sock, found by handoff's own search: no podman_socket), the same
 * scenarios as the rootful file (stacks/podman-suite.ts).
 */
import { execFileSync } from 'node:child_process';
import { podmanSuite } from './stacks/podman-suite.js';

const uid = execFileSync('id', ['-u', 'deploy'], { encoding: 'utf8' }).trim();
podmanSuite({ socket: `/run/user/${uid}/podman/podman.sock`, nameSocket: false, label: 'podman-rootless' });
