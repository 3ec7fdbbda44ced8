import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { deploymentRequest, finishDeployment, startDeployment } from '../../src/action/deployments.js';

interface Seen {
  method: string;
  url: string;
  auth: string;
  body: Record<string, unknown>;
}

async function fakeApi(
  handler: (req: Seen, res: ServerResponse) => void,
): Promise<{ baseUrl: string; seen: Seen[]; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    let data = '';
    req.on('data', (c: Buffer) => (data += c.toString()));
    req.on('end', () => {
      const s: Seen = {
        method: req.method ?? '',
        url: req.url ?? '',
        auth: String(req.headers.authorization ?? ''),
        body: data ? (JSON.parse(data) as Record<string, unknown>) : {},
      };
      seen.push(s);
      handler(s, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { baseUrl: `http://127.0.0.1:${port}`, seen, close: () => new Promise((r) => server.close(() => r())) };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function capture() {
  const lines: string[] = [];
  return { lines, log: { info: (m: string) => lines.push(`info: ${m}`), warning: (m: string) => lines.push(`warning: ${m}`) } };
}

const TOKEN = 'ghs_secretTOKEN123';

test('creates the deployment, then in_progress with log_url, then success with environment_url', async () => {
  const api = await fakeApi((req, res) => {
    if (req.url === '/repos/o/r/deployments') return json(res, 201, { id: 42 });
    if (req.url === '/repos/o/r/deployments/42/statuses') return json(res, 201, { id: 1 });
    json(res, 404, { message: 'Not Found' });
  });
  const { lines, log } = capture();
  try {
    const d = await startDeployment({
      token: TOKEN,
      owner: 'o',
      repo: 'r',
      ref: 'abc1234def',
      environment: 'production',
      description: 'handoff 20261123T193000Z-abc1234',
      logUrl: 'https://github.com/o/r/actions/runs/9',
      baseUrl: api.baseUrl,
      log,
    });
    assert.equal(d?.id, 42);
    await finishDeployment(d, 'success', 'https://example.com');
    assert.deepEqual(
      api.seen.map((s) => `${s.method} ${s.url}`),
      ['POST /repos/o/r/deployments', 'POST /repos/o/r/deployments/42/statuses', 'POST /repos/o/r/deployments/42/statuses'],
    );
    const [create, progress, done] = api.seen as [Seen, Seen, Seen];
    assert.equal(create.body.ref, 'abc1234def');
    assert.equal(create.body.environment, 'production');
    assert.equal(create.body.auto_merge, false);
    assert.deepEqual(create.body.required_contexts, []);
    assert.equal(progress.body.state, 'in_progress');
    assert.equal(progress.body.log_url, 'https://github.com/o/r/actions/runs/9');
    assert.equal(done.body.state, 'success');
    assert.equal(done.body.environment_url, 'https://example.com');
    assert.equal(done.body.log_url, 'https://github.com/o/r/actions/runs/9');
    for (const s of api.seen) assert.match(s.auth, new RegExp(`^(token|bearer) ${TOKEN}$`, 'i'));
    assert.ok(!lines.join('\n').includes(TOKEN), 'the token is never logged');
  } finally {
    await api.close();
  }
});

test('failure state is posted on a failed deploy', async () => {
  const api = await fakeApi((req, res) => json(res, 201, { id: req.url.endsWith('/deployments') ? 7 : 1 }));
  try {
    const d = await startDeployment({
      token: TOKEN,
      owner: 'o',
      repo: 'r',
      ref: 'main',
      environment: 'staging',
      baseUrl: api.baseUrl,
      log: capture().log,
    });
    await finishDeployment(d, 'failure');
    assert.equal(api.seen.at(-1)!.body.state, 'failure');
    assert.equal(api.seen.at(-1)!.url, '/repos/o/r/deployments/7/statuses');
  } finally {
    await api.close();
  }
});

test('without a token or an environment: skipped with an info line, no request', async () => {
  const api = await fakeApi((_req, res) => json(res, 500, {}));
  try {
    const a = capture();
    assert.equal(
      await startDeployment({ owner: 'o', repo: 'r', ref: 'main', environment: 'production', baseUrl: api.baseUrl, log: a.log }),
      undefined,
    );
    assert.match(a.lines.join('\n'), /info: GitHub Deployment skipped: no github_token/);
    const b = capture();
    assert.equal(await startDeployment({ token: TOKEN, owner: 'o', repo: 'r', ref: 'main', baseUrl: api.baseUrl, log: b.log }), undefined);
    assert.match(b.lines.join('\n'), /no environment/);
    assert.equal(api.seen.length, 0);
    await finishDeployment(undefined, 'success'); // a skipped deployment finishes as a no-op
  } finally {
    await api.close();
  }
});

test('API errors are warnings and never throw', async () => {
  const api = await fakeApi((req, res) => {
    if (req.url.endsWith('/deployments')) return json(res, 403, { message: 'Resource not accessible by integration' });
    json(res, 500, { message: 'boom' });
  });
  try {
    const { lines, log } = capture();
    const d = await startDeployment({
      token: TOKEN,
      owner: 'o',
      repo: 'r',
      ref: 'main',
      environment: 'production',
      baseUrl: api.baseUrl,
      log,
    });
    assert.equal(d, undefined);
    assert.match(lines.join('\n'), /warning: could not create a GitHub Deployment for production: HTTP 403.*deployments: write/);
    assert.ok(!lines.join('\n').includes(TOKEN));
  } finally {
    await api.close();
  }
  // created, but the status calls fail: still no throw
  const api2 = await fakeApi((req, res) =>
    req.url.endsWith('/deployments') ? json(res, 201, { id: 5 }) : json(res, 422, { message: 'bad state' }),
  );
  try {
    const { lines, log } = capture();
    const d = await startDeployment({
      token: TOKEN,
      owner: 'o',
      repo: 'r',
      ref: 'main',
      environment: 'production',
      baseUrl: api2.baseUrl,
      log,
    });
    await finishDeployment(d, 'success');
    assert.equal(lines.filter((l) => l.startsWith('warning: could not set GitHub Deployment 5')).length, 2);
  } finally {
    await api2.close();
  }
});

test('the action form (inputs, run, env) maps repository, sha, run URL and API URL', async () => {
  const api = await fakeApi((req, res) => json(res, 201, { id: req.url.endsWith('/deployments') ? 3 : 1 }));
  try {
    const inputs = {
      githubToken: TOKEN,
      environment: 'production',
      environmentUrl: 'https://shop.example',
      project: 'shop',
      rollback: true,
    };
    const run = { sha: 'f00dfeed1234', runUrl: 'https://github.com/acme/shop/actions/runs/77' };
    const env = { GITHUB_REPOSITORY: 'acme/shop', GITHUB_API_URL: api.baseUrl };
    const req = deploymentRequest(inputs, run, env, capture().log);
    assert.equal(req.owner, 'acme');
    assert.equal(req.repo, 'shop');
    assert.match(req.description!, /rollback of shop/);
    const d = await startDeployment(inputs, run, env);
    await d?.finish('success');
    assert.deepEqual(
      api.seen.map((s) => s.url),
      ['/repos/acme/shop/deployments', '/repos/acme/shop/deployments/3/statuses', '/repos/acme/shop/deployments/3/statuses'],
    );
    assert.equal(api.seen[0]!.body.ref, 'f00dfeed1234');
    assert.equal(api.seen[1]!.body.log_url, run.runUrl);
    assert.equal(api.seen[2]!.body.environment_url, 'https://shop.example');
    // without a repository there is nothing to attach a deployment to: skipped
    assert.equal(deploymentRequest(inputs, run, {}, capture().log).environment, undefined);
  } finally {
    await api.close();
  }
});
