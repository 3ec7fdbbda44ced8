/** Local validation (before connecting): the Compose files parse, the rollout rules hold, the proxy config is uploaded. */
import { posix } from 'node:path';
import { parseCompose, type ComposeModel } from '../model/compose.js';
import { localView, selectedProxy } from './gate.js';
import { hookService } from './hooks.js';
import type { Inputs } from '../action/inputs.js';
import type { Log } from '../support/log.js';
import { checkPolicies } from '../model/rollout-policy.js';
import { checkSwarmStack } from '../model/swarm-stack.js';
import type { ReleaseFile } from '../action/workspace.js';

/** Local checks: the Compose files parse, the plan's refusals, the proxy config is uploaded. */
export async function validateLocally(inputs: Inputs, files: ReleaseFile[], log: Log): Promise<{ model: ComposeModel; routed: string[] }> {
  const composeFiles = inputs.composeFiles.map((name) => {
    const f = files.find((x) => x.path === name);
    if (!f) throw new Error(`input 'compose_files': ${name} was not found in the workspace`);
    return { name, text: f.data.toString('utf8') };
  });
  const model = parseCompose(composeFiles, { env: { ...inputs.env, ...inputs.secrets }, onWarning: (m) => log.warning(m) });
  const routed = await proxyRouting(model, files, inputs, log);
  for (const m of missingMounts(
    model,
    files.map((f) => f.path),
    posix.dirname(inputs.composeFiles[0]!),
  )) {
    log.warning(
      `service ${m.service} bind-mounts ${m.source} (${m.path} in the workspace), which is not uploaded: add it to the 'files' input, or Docker creates an empty directory there`,
    );
  }
  if (inputs.target === 'swarm') {
    swarmChecks(inputs, model, routed, files, log);
    return { model, routed };
  }
  // Warnings belong to services that change: the plan shows them once it knows which ones do.
  const check = checkPolicies(model, routed, inputs.services.length ? inputs.services : undefined);
  if (check.errors.length) throw new Error(`the deploy was refused before any change on the host:\n- ${check.errors.join('\n- ')}`);
  if (inputs.preDeploy || inputs.postDeploy) hookService(model.services, routed, inputs.hookService);
  return { model, routed };
}

/** The Swarm target's refusals (model/swarm-stack.ts), and what it does not do yet. */
function swarmChecks(inputs: Inputs, model: ComposeModel, routed: string[], files: ReleaseFile[], log: Log): void {
  const uploaded = files.filter((f) => !inputs.composeFiles.includes(f.path)).map((f) => f.data.toString('utf8'));
  const check = checkSwarmStack(model, routed, uploaded.join('\n'));
  if (inputs.preDeploy || inputs.postDeploy)
    check.errors.push('pre_deploy and post_deploy are not supported with target: swarm yet: remove them');
  if (inputs.services.length || inputs.force)
    check.errors.push("'services' and 'force' are not supported with target: swarm (Swarm updates every changed service): remove them");
  if (check.errors.length) throw new Error(`the deploy was refused before any change on the host:\n- ${check.errors.join('\n- ')}`);
  for (const w of check.warnings) log.warning(w);
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

/**
 * The proxy's routing, from its config among the uploaded files; what its gate needs and the config
 * lacks is refused here (naming the line to add), unless the user allows degraded mode.
 */
async function proxyRouting(model: ComposeModel, files: ReleaseFile[], inputs: Inputs, log: Log): Promise<string[]> {
  const selected = selectedProxy(inputs, model);
  if (!selected) return [];
  const { driver, service } = selected;
  const view = localView(model, service, inputs.composeFiles[0]!, files);
  const cfgPath = driver.configPath(view.paths, service, view.composeDir);
  const cfg = files.find((f) => f.path === cfgPath);
  // In auto mode a Caddy or nginx service that routes no Compose service (a static site, the app
  // itself) is not taken for the proxy: the deploy runs without a drain, as before the drivers.
  const lenient = inputs.proxy === 'auto' && !inputs.proxyService && driver.kind !== 'haproxy';
  if (!cfg && lenient) {
    log.warning(`service ${service.name} looks like ${driver.label} but its config is not uploaded: not used as the proxy (no drain)`);
    return [];
  }
  if (!cfg) throw new Error(driver.missingConfigHint(service));
  const cfgText = cfg.data.toString('utf8');
  if (lenient && (await driver.routedServices(view, cfgText)).length === 0) return [];
  const missing = await driver.requirements(view, cfgText);
  if (missing.length) {
    const what = `${driver.label} (service ${service.name}) cannot drain replicas with this config:\n- ${missing.join('\n- ')}`;
    if (!inputs.allowDegraded) {
      throw new Error(
        `${what}\nFix the config, or set 'allow_degraded: true' to deploy without a drain (requests may be lost), or 'proxy: none'.`,
      );
    }
    log.warning(`${what}\nallow_degraded: true: the rollout runs without a drain; requests may be lost.`);
  }
  return driver.routedServices(view, cfgText);
}
