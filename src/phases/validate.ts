/** Local validation (before connecting): the Compose files parse, the rollout rules hold, the proxy config is uploaded. */
import { posix } from 'node:path';
import { parseCompose, type ComposeModel, type ComposeService } from '../model/compose.js';
import { findProxyService, routedServices } from '../proxy/haproxy/config.js';
import { hookService } from './hooks.js';
import type { Inputs } from '../action/inputs.js';
import type { Log } from '../support/log.js';
import { checkPolicies } from '../model/rollout-policy.js';
import type { ReleaseFile } from '../action/workspace.js';

/** Local checks: the Compose files parse, the plan's refusals, the proxy config is uploaded. */
export function validateLocally(inputs: Inputs, files: ReleaseFile[], log: Log): { model: ComposeModel; routed: string[] } {
  const composeFiles = inputs.composeFiles.map((name) => {
    const f = files.find((x) => x.path === name);
    if (!f) throw new Error(`input 'compose_files': ${name} was not found in the workspace`);
    return { name, text: f.data.toString('utf8') };
  });
  const model = parseCompose(composeFiles, { env: { ...inputs.env, ...inputs.secrets }, onWarning: (m) => log.warning(m) });
  const routed = proxyRouting(model, files, inputs);
  for (const m of missingMounts(
    model,
    files.map((f) => f.path),
    posix.dirname(inputs.composeFiles[0]!),
  )) {
    log.warning(
      `service ${m.service} bind-mounts ${m.source} (${m.path} in the workspace), which is not uploaded: add it to the 'files' input, or Docker creates an empty directory there`,
    );
  }
  // Warnings belong to services that change: the plan shows them once it knows which ones do.
  const check = checkPolicies(model, routed, inputs.services.length ? inputs.services : undefined);
  if (check.errors.length) throw new Error(`the deploy was refused before any change on the host:\n- ${check.errors.join('\n- ')}`);
  if (inputs.preDeploy || inputs.postDeploy) hookService(model.services, routed, inputs.hookService);
  return { model, routed };
}

/** Relative bind mounts whose source is not among the uploaded files (runtime dirs like ./run are fine empty, but worth a word). */
export function missingMounts(
  model: ComposeModel,
  paths: string[],
  composeDir: string,
): Array<{ service: string; source: string; path: string }> {
  const out: Array<{ service: string; source: string; path: string }> = [];
  for (const svc of model.services) {
    for (const v of svc.volumes) {
      if (v.type !== 'bind' || !v.source || v.source.startsWith('/') || v.source.startsWith('~')) continue;
      const rel = posix.normalize(posix.join(composeDir, v.source));
      if (rel.startsWith('..')) continue;
      if (!paths.some((p) => p === rel || p.startsWith(`${rel}/`)) && !/(^|\/)run$/.test(rel))
        out.push({ service: svc.name, source: v.source, path: rel });
    }
  }
  return out;
}

/** The proxy service, its config text, and which services it routes to. */
function proxyRouting(model: ComposeModel, files: ReleaseFile[], inputs: Inputs): string[] {
  const proxy = findProxyService(model.services, inputs.proxyService);
  if (!proxy) return [];
  const composeDir = posix.dirname(inputs.composeFiles[0]!);
  const cfgPath = proxyConfigPath(
    files.map((f) => f.path),
    proxy,
    composeDir,
  );
  const cfg = files.find((f) => f.path === cfgPath);
  if (!cfg)
    throw new Error(
      `service ${proxy.name} runs HAProxy but no haproxy.cfg is in the uploaded files: add its config directory to the 'files' input`,
    );
  return routedServices(
    cfg.data.toString('utf8'),
    model.services.map((s) => s.name),
  );
}

/**
 * The HAProxy config among the release's files: the `.cfg` the proxy service bind-mounts (a file, or
 * haproxy.cfg / any .cfg inside a mounted directory), else the first haproxy*.cfg uploaded.
 */
export function proxyConfigPath(paths: string[], proxy: ComposeService | undefined, composeDir: string): string | undefined {
  const cfgs = paths.filter((p) => p.endsWith('.cfg'));
  for (const v of proxy?.volumes ?? []) {
    if (v.type !== 'bind' || !v.source || v.source.startsWith('/') || v.source.startsWith('~')) continue;
    const rel = posix.normalize(posix.join(composeDir, v.source));
    const inside = cfgs.filter((p) => p === rel || p.startsWith(`${rel}/`));
    const hit = inside.find((p) => p === rel) ?? inside.find((p) => p.endsWith('/haproxy.cfg')) ?? inside[0];
    if (hit) return hit;
  }
  return cfgs.find((p) => /haproxy[^/]*\.cfg$/i.test(p));
}
