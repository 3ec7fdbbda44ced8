import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { readInputs } from '../../src/action/inputs.js';
import { reportOutputs, newReport } from '../../src/action/report.js';

const action = parse(readFileSync(new URL('../../action.yml', import.meta.url), 'utf8')) as {
  inputs: Record<string, { description: string; default?: string; required?: boolean }>;
  outputs: Record<string, unknown>;
  runs: { using: string; main: string; post: string };
};

test('action.yml runs the bundle on node24 with a post step', () => {
  assert.equal(action.runs.using, 'node24');
  assert.equal(action.runs.main, 'dist/main/index.js');
  assert.equal(action.runs.post, 'dist/post/index.js');
});

test('every input the code reads is declared in action.yml, and every declared one is read', () => {
  const read = new Set<string>();
  const values: Record<string, string> = {
    host: 'h',
    username: 'u',
    key: 'k',
    known_hosts: 'h ssh-ed25519 AAAA',
    project: 'p',
    probe_url: 'http://x/',
    probe_slow_url: 'http://x/slow',
    jump_host: 'j',
    jump_fingerprint: 'SHA256:x',
    rollback: 'true',
  };
  readInputs((name) => {
    read.add(name);
    return values[name] ?? action.inputs[name]?.default?.replace('${{ github.token }}', 'token') ?? '';
  });
  const declared = new Set(Object.keys(action.inputs));
  assert.deepEqual(
    [...read].filter((n) => !declared.has(n)),
    [],
    'read but not declared',
  );
  assert.deepEqual(
    [...declared].filter((n) => !read.has(n)),
    [],
    'declared but never read',
  );
  for (const [name, i] of Object.entries(action.inputs)) assert.ok(i.description.length >= 5, `${name} has a description`);
});

test('every output the report sets is declared in action.yml', () => {
  const set = Object.keys(reportOutputs(newReport('p', 'deploy')));
  assert.deepEqual(set.sort(), Object.keys(action.outputs).sort());
});
