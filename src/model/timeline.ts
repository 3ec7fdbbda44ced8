/** Every step of a deploy leaves a timestamped event, so the probe's losses can be lined up with them. */
export type EventAction =
  | 'deploy-start'
  | 'upload'
  | 'proxy-reload'
  | 'start'
  | 'healthy'
  | 'up-in-proxy'
  | 'drain'
  | 'drained'
  | 'stop'
  | 'remove'
  | 'monitor-ok'
  | 'failure'
  | 'rollback-start'
  | 'rollback-done'
  | 'deploy-end'
  /** The SSH connection dropped and came back. */
  | 'reconnect'
  /** pre_deploy / post_deploy ran (detail: which, result, duration). */
  | 'hook'
  | 'note';

export interface TimelineEvent {
  /** ms since the epoch */
  at: number;
  action: EventAction;
  service?: string;
  container?: string;
  detail?: string;
  /** How long the step took as the host timed it (ms), e.g. a replica's start to healthy by Docker's clock. */
  ms?: number;
}

export class Timeline {
  readonly events: TimelineEvent[] = [];
  constructor(private readonly now: () => number = Date.now) {}

  add(action: EventAction, fields: Omit<TimelineEvent, 'at' | 'action'> = {}): TimelineEvent {
    const event = { at: this.now(), action, ...fields };
    this.events.push(event);
    return event;
  }

  /** The event closest in time to `at`, for naming what happened around a lost request. */
  nearest(at: number): TimelineEvent | undefined {
    let best: TimelineEvent | undefined;
    for (const e of this.events) {
      if (!best || Math.abs(e.at - at) < Math.abs(best.at - at)) best = e;
    }
    return best;
  }
}
