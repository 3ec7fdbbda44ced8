/**
 * The one sleep. Code that waits in a loop takes a `sleep` option defaulting to this one, so tests
 * can pass a virtual clock's instead.
 */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
