/**
 * Wall-clock limits for remote commands (ExecOptions.timeoutMs), by kind of command. A command
 * past its limit is killed and its step fails; these are generous, for a slow host, not a budget.
 */

/** A one-line command that answers at once: the host's clock; the least a lock heartbeat's command gets. */
export const INSTANT_COMMAND_MS = 10_000;

/** A few small files or one signal: read a file, mkdir, the lock, the audit log, `docker logs`, `docker kill`. */
export const QUICK_COMMAND_MS = 30_000;

/** Asking Docker about containers or images (ps, inspect, tag), the host facts, `haproxy -c` in a throwaway container (may pull its image). */
export const DOCKER_COMMAND_MS = 60_000;

/** Moving or removing a release's files (upload, copy, activate, prune, image rm), Compose loading and hashing a project. */
export const RELEASE_COMMAND_MS = 120_000;

/** `compose up` creating containers (the `up_timeout` default), and any command run without a limit of its own. */
export const LONG_COMMAND_MS = 600_000;
