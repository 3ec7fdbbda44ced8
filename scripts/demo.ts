/**
 * The README's demo: deploy the sample stack (examples/) to this machine through the bundled action,
 * exactly as a runner would run it, with the probe on; then deploy v2 over it and print the summary.
 */
import { connectionInputs, runAction, sampleWorkspace } from '../test/e2e/harness.js';

const port = Number(process.env.DEMO_PORT ?? 18080);
const workspace = await sampleWorkspace();
const base = {
  ...connectionInputs(),
  project: 'handoff-demo',
  compose_files: 'deploy/compose.yaml',
  files: 'deploy/haproxy/',
  pull: 'never',
  probe_url: `http://127.0.0.1:${port}/`,
  probe_rate: '50',
};

for (const version of ['v1', 'v2']) {
  console.log(`\n=== deploying handoff-test-app:${version} ===`);
  const r = await runAction(
    { ...base, env: `PROXY_PORT=${port}\nAPP_IMAGE=handoff-test-app:${version}` },
    { workspace, onLog: (c) => process.stdout.write(c) },
  );
  console.log(`\n--- job summary (${version}) ---\n${r.summary}`);
  if (r.code !== 0) {
    console.error(`deploy of ${version} failed (exit ${r.code})`);
    process.exit(1);
  }
}
console.log(`\nThe sample stack is serving at http://127.0.0.1:${port}/ (try: curl -i http://127.0.0.1:${port}/)`);
console.log(
  'Remove it with: docker-compose -p handoff-demo down  (or docker rm -f $(docker ps -aq --filter label=com.docker.compose.project=handoff-demo))',
);
