/** The Plan phase: the desired state read on the host, compared with what runs, shown in the log and the report. */
import type { ComposeModel } from '../model/compose.js';
import { selectedProxy } from './gate.js';
import { phase } from '../support/log.js';
import { renderPlan, renderPlanMarkdown, type Plan } from '../model/plan.js';
import { desiredState, makePlan } from './desired.js';
import type { History, Release } from './release.js';
import type { Session } from './session.js';

export interface Planned {
  model: ComposeModel;
  plan: Plan;
  proxyService?: string;
}

export async function planPhase(s: Session, release: Release, routed: string[], history: History): Promise<Planned> {
  const { inputs, log, report } = s;
  s.roundTrips?.enter('plan');
  const { model, desired, running } = await phase('Plan', async () =>
    desiredState(s, { composeFiles: release.composeFiles, release: release.id }, routed, history.serving),
  );
  const plan = makePlan(s, desired, inputs.force, running);
  const proxyService = selectedProxy(inputs, model)?.service.name;
  const proxyRolls = plan.services.find((p) => p.service === proxyService && p.action === 'roll');
  if (proxyRolls) {
    proxyRolls.warnings.push(
      `the proxy (${proxyService}) itself changes: recreating it drops the connections open through it; change only its config (reloaded hitlessly) when you can`,
    );
  }
  for (const p of plan.services) if (p.action !== 'keep' && p.action !== 'skip') for (const w of p.warnings) log.warning(w);
  report.planText = renderPlan(plan);
  report.planMarkdown = renderPlanMarkdown(plan);
  report.planJson = plan.services.map((p) => ({
    service: p.service,
    action: p.action,
    order: p.order,
    old: p.oldReplicas,
    new: p.newReplicas,
    batches: p.batches.length,
  }));
  log.info(report.planText);
  return { model, plan, ...(proxyService ? { proxyService } : {}) };
}
