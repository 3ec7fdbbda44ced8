import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  AdminFlag,
  describeAdminState,
  checkPassed,
  hasAddress,
  isUp,
  isForcedMaint,
  isMaint,
  isServing,
  OpState,
  parseServersState,
  parseShowStat,
  slotsForAddress,
} from '../../src/proxy/haproxy/stats.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8');

test('parseServersState reads HAProxy 2.6 output by header names', () => {
  const states = parseServersState(fixture('haproxy-2.6-servers-state-up.txt'));
  assert.equal(states.length, 4);
  const [app1, , app3] = states;
  assert.equal(app1!.backend, 'app');
  assert.equal(app1!.server, 'app1');
  assert.equal(app1!.addr, '127.0.0.2');
  assert.equal(app1!.opState, OpState.RUNNING);
  assert.equal(app1!.adminState, 0);
  assert.equal(app1!.fqdn, 'app');
  assert.equal(app1!.port, 37565);
  assert.equal(app1!.fields.srv_use_ssl, '0');
  assert.ok(isServing(app1!));
  // A free server-template slot: no address, DNS maintenance.
  assert.equal(app3!.addr, '-');
  assert.equal(hasAddress(app3!), false);
  assert.equal(app3!.adminState, AdminFlag.RMAINT);
  assert.ok(isMaint(app3!));
  assert.equal(isForcedMaint(app3!), false);
  assert.equal(isServing(app3!), false);
});

test('a slot set to maint, then dropped by DNS, then handed a new IP stays FMAINT (the trap)', () => {
  const maint = parseServersState(fixture('haproxy-2.6-servers-state-maint.txt'))[0]!;
  assert.equal(maint.adminState, AdminFlag.FMAINT);
  assert.equal(maint.opState, OpState.STOPPED);

  const dropped = parseServersState(fixture('haproxy-2.6-servers-state-dns-dropped.txt'))[0]!;
  assert.equal(dropped.adminState, AdminFlag.FMAINT | AdminFlag.RMAINT);
  assert.equal(describeAdminState(dropped.adminState), 'FMAINT|RMAINT');
  assert.equal(hasAddress(dropped), false);

  const trap = parseServersState(fixture('haproxy-2.6-servers-state-trap.txt'))[0]!;
  assert.equal(trap.addr, '127.0.0.4');
  assert.equal(trap.adminState, AdminFlag.FMAINT);
  assert.ok(isForcedMaint(trap));
  assert.equal(isServing(trap), false);
});

test('parseServersState reads the older 19-column layout (2.0-2.3)', () => {
  const states = parseServersState(fixture('haproxy-2.0-servers-state.txt'));
  assert.deepEqual(
    states.map((s) => [s.server, s.addr, s.opState, describeAdminState(s.adminState)]),
    [
      ['app1', '172.18.0.5', 0, 'FMAINT'],
      ['app2', '172.18.0.6', 2, 'READY'],
      ['app3', '172.18.0.7', 2, 'FDRAIN'],
      ['app4', '0.0.0.0', 0, 'RMAINT'],
    ],
  );
  assert.equal(states[3]!.fields.srvrecord, undefined);
  assert.equal(hasAddress(states[3]!), false);
  // Drain is not serving new traffic either.
  assert.equal(isServing(states[2]!), false);
  assert.ok(isServing(states[1]!));
});

test('parseServersState refuses an unknown format version and answers that are not a state dump', () => {
  assert.throws(
    () => parseServersState('2\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state\n'),
    /unsupported format version "2"/,
  );
  assert.throws(() => parseServersState("Can't find backend.\n\n"), /unsupported format version/);
  assert.throws(() => parseServersState(''), /empty answer/);
  assert.throws(() => parseServersState('1\n# be_id be_name srv_id srv_name\n'), /no "srv_addr" column/);
});

test('parseServersState with the header but no servers gives an empty list', () => {
  assert.deepEqual(parseServersState('1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state\n\n'), []);
});

test('parseShowStat reads HAProxy 2.6 CSV by header names', () => {
  const rows = parseShowStat(fixture('haproxy-2.6-show-stat-up.csv') + '\n');
  assert.deepEqual(
    rows.map((r) => `${r.pxname}/${r.svname}`),
    ['web/FRONTEND', 'app/app1', 'app/app2', 'app/app3', 'app/app4', 'app/BACKEND'],
  );
  const app1 = rows[1]!;
  assert.equal(app1.status, 'UP');
  assert.equal(app1.addr, '127.0.0.2:37565');
  assert.equal(app1.checkStatus, 'L7OK');
  assert.equal(app1.scur, 0);
  assert.equal(app1.fields.check_desc, 'Layer7 check passed');
  assert.equal(rows[3]!.status, 'MAINT (resolution)');
  assert.equal(rows[3]!.addr, '');
  assert.equal(rows[5]!.fields.algo, 'roundrobin');
});

test('parseShowStat shows the trap slot as MAINT with the new address', () => {
  const app1 = parseShowStat(fixture('haproxy-2.6-show-stat-trap.csv')).find((r) => r.svname === 'app1')!;
  assert.equal(app1.status, 'MAINT');
  assert.equal(app1.addr, '127.0.0.4:37565');
});

test('parseShowStat reads HAProxy 3.0 column order (new columns shift the later ones)', () => {
  const rows = parseShowStat(fixture('haproxy-3.0-show-stat.csv'));
  const app2 = rows.find((r) => r.svname === 'app2')!;
  assert.equal(app2.scur, 3);
  assert.equal(app2.qcur, 1);
  assert.equal(app2.status, 'UP');
  assert.equal(app2.addr, '172.18.0.6:8080');
  assert.equal(app2.fields.srid, '2');
  assert.equal(rows.find((r) => r.svname === 'app3')!.status, 'DRAIN');
  assert.equal(rows.find((r) => r.svname === 'FRONTEND')!.scur, 5);
});

test('parseShowStat refuses text without the CSV header', () => {
  assert.throws(() => parseShowStat('Unknown command.\n'), /no "# pxname,svname,..." header/);
  assert.throws(() => parseShowStat('# foo,bar\nx,y\n'), /no "pxname" column/);
});

test('slotsForAddress finds every slot holding an IP, optionally in one backend', () => {
  const states = parseServersState(fixture('haproxy-2.6-servers-state-up.txt'));
  assert.deepEqual(
    slotsForAddress(states, '127.0.0.3').map((s) => s.server),
    ['app2'],
  );
  assert.deepEqual(slotsForAddress(states, '127.0.0.3', 'other'), []);
  assert.deepEqual(slotsForAddress(states, '127.0.0.9'), []);
  // A prefix of an address is not a match.
  assert.deepEqual(slotsForAddress(states, '127.0.0'), []);
  // Two backends routing to the same replica: both slots.
  const twice = [...states, { ...states[1]!, backend: 'app-admin', backendId: 4 }];
  assert.deepEqual(
    slotsForAddress(twice, '127.0.0.3').map((s) => `${s.backend}/${s.server}`),
    ['app/app2', 'app-admin/app2'],
  );
});

test('describeAdminState names every bit', () => {
  assert.equal(describeAdminState(0), 'READY');
  assert.equal(describeAdminState(0x01 | 0x04 | 0x08 | 0x20), 'FMAINT|CMAINT|FDRAIN|RMAINT');
  assert.equal(describeAdminState(0x40), 'FQDN_CHANGED');
});

test('isUp needs a passed health check when the slot has one configured', () => {
  const [app1] = parseServersState(fixture('haproxy-2.6-servers-state-up.txt'));
  assert.ok(checkPassed(app1!));
  assert.ok(isUp(app1!));
  // Just resolved by DNS: running, but the first check has not run (result 0, status INI).
  const fresh = { ...app1!, fields: { ...app1!.fields, srv_check_status: '1', srv_check_result: '0' } };
  assert.ok(isServing(fresh));
  assert.equal(checkPassed(fresh), false);
  assert.equal(isUp(fresh), false);
  // No `check` on the server line: nothing to wait for.
  const unchecked = { ...fresh, fields: { ...fresh.fields, srv_check_state: '0' } };
  assert.ok(isUp(unchecked));
});
