/** The probe of a deploy: started once the live stack begins to change, finished for the verdict. */
import { phase } from '../support/log.js';
import type { Plan } from '../model/plan.js';
import { startProbeSession, type ProbeSession } from '../probe/session.js';
import type { Verdict } from '../probe/verdict.js';
import { connectHost } from './connect.js';
import type { Session } from './session.js';

export interface RunningProbe {
  /** The verdict, once: undefined when no probe ran. */
  finish(): Promise<Verdict | undefined>;
}

export async function startProbe(s: Session, plan: Plan): Promise<RunningProbe> {
  // Losses can only be counted against a service that was serving: a first deploy has no baseline.
  return startProbeIfServing(
    s,
    plan.services.some((p) => p.oldReplicas > 0),
  );
}

export async function startProbeIfServing(s: Session, wasServing: boolean): Promise<RunningProbe> {
  const { inputs, log, report, timeline } = s;
  s.roundTrips?.enter('probe start');
  if (inputs.probe && !wasServing) {
    const note =
      'Probe skipped: nothing of this project was running before this deploy, so no request could be dropped. It runs from the next deploy on.';
    log.info(note);
    report.warnings.push(note);
  }
  // The tunnel gets its own connection, so probe requests never queue behind deploy commands; its
  // channels are TCP forwards, which sshd's MaxSessions does not count, so it may open many. It runs
  // no command, so it starts no host shell.
  const tunnel =
    inputs.probe?.via === 'ssh' && wasServing ? await connectHost(inputs, log, { maxChannels: 128, hostShell: false }) : undefined;
  const probe: ProbeSession | undefined =
    inputs.probe && wasServing ? await startProbeSession(inputs.probe, tunnel ?? s.remote, timeline, log) : undefined;
  let finished = false;
  s.cleanups.push(async () => {
    if (probe && !finished) await probe.abort();
    await tunnel?.close();
  });
  return {
    async finish() {
      const verdict = probe ? await phase('Probe', async () => probe.finish(inputs.maxLost, report)) : undefined;
      finished = true;
      return verdict;
    },
  };
}
