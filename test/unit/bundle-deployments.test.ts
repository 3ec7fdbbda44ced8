/**
 * The bundle loads Octokit lazily (a separate chunk in dist/main), so this runs dist/main/index.js
 * itself, like a runner, against a fake GitHub API: the chunk must load and the deployment must be
 * created, set in_progress, then failure when the host cannot be reached.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';

const repo = join(import.meta.dirname, '../..');

test('dist/main loads Octokit on demand and reports a failed deploy as a failed GitHub Deployment', async () => {
  const seen: { url: string; body: Record<string, unknown> }[] = [];
  const server = createServer((req, res) => {
    let data = '';
    req.on('data', (c: Buffer) => (data += c.toString()));
    req.on('end', () => {
      seen.push({ url: req.url ?? '', body: data ? (JSON.parse(data) as Record<string, unknown>) : {} });
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 7 }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const api = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const ws = await mkdtemp(join(tmpdir(), 'handoff-bundle-'));
  try {
    await writeFile(join(ws, 'compose.yaml'), 'services:\n  app:\n    image: example/app:1\n');
    for (const f of ['output', 'summary', 'state']) await writeFile(join(ws, f), '');
    const key = ssh2.utils.generateKeyPairSync('ed25519').private;
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      GITHUB_WORKSPACE: ws,
      GITHUB_REPOSITORY: 'o/r',
      GITHUB_SHA: 'a'.repeat(40),
      GITHUB_REF: 'refs/heads/main',
      GITHUB_RUN_ID: '1',
      GITHUB_SERVER_URL: api,
      GITHUB_API_URL: api,
      GITHUB_OUTPUT: join(ws, 'output'),
      GITHUB_STEP_SUMMARY: join(ws, 'summary'),
      GITHUB_STATE: join(ws, 'state'),
      INPUT_HOST: '127.0.0.1',
      INPUT_PORT: '9',
      INPUT_USERNAME: 'deploy',
      INPUT_KEY: key,
      INPUT_INSECURE_IGNORE_HOST_KEY: 'true',
      INPUT_CONNECT_TIMEOUT: '5',
      INPUT_PROJECT: 'app',
      INPUT_PROBE_URL: '',
      INPUT_GITHUB_TOKEN: 'ghs_bundleTOKEN',
      INPUT_ENVIRONMENT: 'production',
    };
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, [join(repo, 'dist/main/index.js')], { env, stdio: 'ignore' });
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.on('close', (c) => (clearTimeout(timer), resolve(c)));
    });
    assert.equal(code, 1, 'the deploy cannot reach port 9, so the step fails');
    assert.deepEqual(
      seen.map((s) => `${s.url} ${String(s.body.state ?? s.body.environment)}`),
      ['/repos/o/r/deployments production', '/repos/o/r/deployments/7/statuses in_progress', '/repos/o/r/deployments/7/statuses failure'],
    );
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
    await rm(ws, { recursive: true, force: true });
  }
});
