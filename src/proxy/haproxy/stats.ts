/**
 * Pure parsers for the HAProxy Runtime API's `show stat` (CSV) and `show servers state` output.
 * Both are read by header names, never by column position: every HAProxy release appends columns.
 */

/** One row of `show stat`: a frontend, a backend, or a server slot of a backend. */
export interface StatRow {
  /** Proxy (frontend/backend) name. */
  pxname: string;
  /** FRONTEND, BACKEND, or the server's name (e.g. `app3` from `server-template app 10 ...`). */
  svname: string;
  /** Current sessions. */
  scur: number;
  /** Requests queued, waiting for a free connection slot on this server. */
  qcur: number;
  /** UP, DOWN, MAINT, DRAIN, NOLB, `UP 1/2` (going down), `MAINT (resolution)`, `no check`... */
  status: string;
  /** Server address `ip:port`, empty when the slot has none. */
  addr: string;
  /** Last health check result, e.g. L7OK, L4CON, `* L7OK` while a check runs. */
  checkStatus: string;
  /** Every column by its header name, for fields not typed above. */
  fields: Record<string, string>;
}

/** Parse `show stat` CSV. The first line is `# pxname,svname,...`; blank lines are ignored. */
export function parseShowStat(csv: string): StatRow[] {
  const lines = csv.split('\n').map((l) => l.replace(/\r$/, ''));
  const headerAt = lines.findIndex((l) => l.startsWith('# '));
  if (headerAt < 0) throw new Error(`show stat: no "# pxname,svname,..." header in ${excerpt(csv)}`);
  const header = lines[headerAt]!.slice(2).split(',');
  for (const required of ['pxname', 'svname']) {
    if (!header.includes(required)) throw new Error(`show stat: header has no "${required}" column`);
  }
  const rows: StatRow[] = [];
  for (const line of lines.slice(headerAt + 1)) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    // HAProxy's CSV never quotes: names cannot contain commas and free-text fields are sanitised.
    const cells = line.split(',');
    const fields: Record<string, string> = {};
    header.forEach((name, i) => {
      if (name !== '') fields[name] = cells[i] ?? '';
    });
    rows.push({
      pxname: fields.pxname ?? '',
      svname: fields.svname ?? '',
      scur: int(fields.scur),
      qcur: int(fields.qcur),
      status: fields.status ?? '',
      addr: fields.addr ?? '',
      checkStatus: fields.check_status ?? '',
      fields,
    });
  }
  return rows;
}

/** srv_op_state values (enum srv_state in HAProxy's server-t.h). */
export const OpState = { STOPPED: 0, STARTING: 1, RUNNING: 2, STOPPING: 3 } as const;

/**
 * srv_admin_state bits (enum srv_admin in HAProxy's include/haproxy/server-t.h, same in 2.6 to 3.x).
 * Note the order: CMAINT is 0x04 and RMAINT (DNS) is 0x20.
 */
export const AdminFlag = {
  /** Forced into maintenance (`set server ... state maint`, `disable server`). */
  FMAINT: 0x01,
  /** Maintenance inherited from a tracked server. */
  IMAINT: 0x02,
  /** Maintenance from the configuration (`disabled`). */
  CMAINT: 0x04,
  /** Forced drain (`set server ... state drain`). */
  FDRAIN: 0x08,
  /** Drain inherited from a tracked server. */
  IDRAIN: 0x10,
  /** No address: the name did not resolve, or DNS dropped it (the free slots of a server-template). */
  RMAINT: 0x20,
  /** Not a state: the FQDN was changed at runtime (2.x sets it and never clears it). */
  FQDN_CHANGED: 0x40,
} as const;

const MAINT_MASK = AdminFlag.FMAINT | AdminFlag.IMAINT | AdminFlag.CMAINT | AdminFlag.RMAINT;
const DRAIN_MASK = AdminFlag.FDRAIN | AdminFlag.IDRAIN;

/** One server slot from `show servers state`. */
export interface ServerState {
  backendId: number;
  backend: string;
  serverId: number;
  server: string;
  /** The slot's current address; `0.0.0.0` or `-` when it has none. */
  addr: string;
  /** srv_op_state: see OpState. */
  opState: number;
  /** srv_admin_state bitfield: see AdminFlag. */
  adminState: number;
  /** The FQDN the slot resolves (`app` for `server-template app 10 app:8080`), `-` when none. */
  fqdn: string;
  port: number;
  /** Every column by its header name. */
  fields: Record<string, string>;
}

/**
 * Parse `show servers state [backend]`: a version line (`1`), a `# be_id be_name ...` header, then
 * one space-separated line per server. Unknown versions are refused rather than misread.
 */
export function parseServersState(text: string): ServerState[] {
  const lines = text
    .split('\n')
    .map((l) => l.replace(/\r$/, ''))
    .filter((l) => l.trim() !== '');
  if (lines.length === 0) throw new Error('show servers state: empty answer');
  const version = lines[0]!.trim();
  if (version !== '1') throw new Error(`show servers state: unsupported format version ${JSON.stringify(version)} in ${excerpt(text)}`);
  const headerLine = lines.find((l) => l.startsWith('#'));
  if (!headerLine) throw new Error(`show servers state: no "# be_id be_name ..." header in ${excerpt(text)}`);
  const header = headerLine.replace(/^#\s*/, '').split(/\s+/);
  for (const required of ['be_name', 'srv_name', 'srv_addr', 'srv_op_state', 'srv_admin_state']) {
    if (!header.includes(required)) throw new Error(`show servers state: header has no "${required}" column`);
  }
  const out: ServerState[] = [];
  for (const line of lines.slice(1)) {
    if (line.startsWith('#')) continue;
    const cells = line.trim().split(/\s+/);
    const fields: Record<string, string> = {};
    header.forEach((name, i) => {
      fields[name] = cells[i] ?? '';
    });
    out.push({
      backendId: int(fields.be_id),
      backend: fields.be_name ?? '',
      serverId: int(fields.srv_id),
      server: fields.srv_name ?? '',
      addr: fields.srv_addr ?? '',
      opState: int(fields.srv_op_state),
      adminState: int(fields.srv_admin_state),
      fqdn: fields.srv_fqdn ?? '-',
      port: int(fields.srv_port),
      fields,
    });
  }
  return out;
}

/** The slot holds an address (`-` in 2.4+, `0.0.0.0` in older releases, when it has none). */
export function hasAddress(s: ServerState): boolean {
  return s.addr !== '' && s.addr !== '-' && s.addr !== '0.0.0.0' && s.addr !== '::';
}

/** In maintenance for any reason (forced, inherited, configured, or no address). */
export function isMaint(s: ServerState): boolean {
  return (s.adminState & MAINT_MASK) !== 0;
}

/** Put in maintenance by hand (the Runtime API): DNS never clears this bit. */
export function isForcedMaint(s: ServerState): boolean {
  return (s.adminState & AdminFlag.FMAINT) !== 0;
}

export function isDrain(s: ServerState): boolean {
  return (s.adminState & DRAIN_MASK) !== 0;
}

/** The slot takes new traffic: running, with no maintenance or drain bit. */
export function isServing(s: ServerState): boolean {
  return s.opState === OpState.RUNNING && !isMaint(s) && !isDrain(s);
}

// enum chk_result and CHK_ST_* in HAProxy's check-t.h.
const CHK_RES_PASSED = 3;
const CHK_ST_CONFIGURED = 0x02;

/**
 * The slot's last health check passed, or it has none. Needed because HAProxy marks a slot that
 * DNS just filled as running before its first check has run.
 */
export function checkPassed(s: ServerState): boolean {
  const state = s.fields.srv_check_state;
  if (state === undefined || (int(state) & CHK_ST_CONFIGURED) === 0) return true;
  return int(s.fields.srv_check_result) === CHK_RES_PASSED;
}

/** Serving and proven healthy by a check: what "UP in the proxy" means for a new replica. */
export function isUp(s: ServerState): boolean {
  return isServing(s) && checkPassed(s);
}

/** Names the admin bits that are set, for logs: e.g. `FMAINT|RMAINT`, or `READY`. */
export function describeAdminState(adminState: number): string {
  const names = Object.entries(AdminFlag)
    .filter(([, bit]) => (adminState & bit) !== 0)
    .map(([name]) => name);
  return names.length ? names.join('|') : 'READY';
}

/** The slots holding this IP (a drained slot and a fresh one can briefly share an address). Pure. */
export function slotsForAddress(states: ServerState[], ip: string, backend?: string): ServerState[] {
  return states.filter((s) => s.addr === ip && (backend === undefined || s.backend === backend));
}

function int(v: string | undefined): number {
  const n = Number.parseInt(v ?? '', 10);
  return Number.isFinite(n) ? n : 0;
}

function excerpt(s: string): string {
  const t = s.trim();
  return JSON.stringify(t.length > 120 ? `${t.slice(0, 120)}…` : t);
}
