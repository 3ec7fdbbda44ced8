/**
 * Facts about the deploy host that every later step needs, read in one round trip:
 * can this user run docker, and which Compose flavor is installed.
 */
import type { ComposeFlavor } from './compose-cli.js';
import type { Remote } from './remote.js';

export interface HostFacts {
  dockerVersion: string;
  compose: ComposeFlavor;
  composeVersion: string;
}

// Markers keep the parse independent of whatever the login shell prints around the output.
const FACTS_SCRIPT = [
  'printf "docker=%s\\n" "$(docker version --format "{{.Server.Version}}" 2>&1 | tail -n 1)"',
  'if v=$(docker compose version --short 2>/dev/null); then printf "compose=v2 %s\\n" "$v";',
  'elif v=$(docker-compose version --short 2>/dev/null); then printf "compose=v1 %s\\n" "$v";',
  'else echo "compose=none"; fi',
].join('\n');

export function parseHostFacts(stdout: string, username: string): HostFacts {
  const docker = /^docker=(.*)$/m.exec(stdout)?.[1]?.trim() ?? '';
  const compose = /^compose=(v1|v2|none)\s*(\S*)/m.exec(stdout);
  if (!/^\d+\.\d+/.test(docker)) {
    if (/permission denied/i.test(docker)) {
      throw new Error(`user '${username}' cannot reach the Docker engine (permission denied on docker.sock): add it to the docker group (sudo usermod -aG docker ${username}) and reconnect`);
    }
    throw new Error(`Docker is not usable on the host: ${docker || 'no docker command'}. Install the Docker engine and make sure it is running.`);
  }
  if (!compose || compose[1] === 'none') {
    throw new Error('neither `docker compose` (v2) nor `docker-compose` (v1) works on the host: install the Compose plugin (docker-compose-plugin) or docker-compose');
  }
  return { dockerVersion: docker, compose: compose[1] as ComposeFlavor, composeVersion: compose[2] ?? '' };
}

export async function readHostFacts(remote: Remote, username: string): Promise<HostFacts> {
  const r = await remote.exec(FACTS_SCRIPT, { check: false, timeoutMs: 60_000 });
  return parseHostFacts(r.stdout, username);
}
