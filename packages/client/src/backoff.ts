/** Reconnect policy; all delays in milliseconds. */
export interface ReconnectOptions {
  /** Ceiling of the first reconnect delay, in ms (default 100). */
  initialDelayMs?: number;
  /** Largest ceiling any reconnect delay may have, in ms (default 5000). */
  maxDelayMs?: number;
  /** Reconnect attempts in a row before the client gives up and closes (default Infinity). */
  maxAttempts?: number;
  /** Random source in [0, 1) for the jitter (default `Math.random`); inject one in tests. */
  random?: () => number;
}

/** A reconnect policy with every default filled in. */
export interface BackoffPolicy {
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly maxAttempts: number;
  readonly random: () => number;
}

/** Fills in the defaults of a reconnect policy (100 ms, 5000 ms, Infinity, Math.random). */
export function backoffPolicy(options: ReconnectOptions = {}): BackoffPolicy {
  return {
    initialDelayMs: Math.max(0, options.initialDelayMs ?? 100),
    maxDelayMs: Math.max(0, options.maxDelayMs ?? 5_000),
    maxAttempts: options.maxAttempts ?? Number.POSITIVE_INFINITY,
    random: options.random ?? Math.random,
  };
}

/**
 * Delay before reconnect attempt `attempt` (0 for the first), with full jitter:
 * a whole number of ms drawn uniformly from [0, min(maxDelayMs, initialDelayMs * 2^attempt)).
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.max(0, attempt));
  const r = Math.min(Math.max(policy.random(), 0), 1);
  // Math.floor keeps the delay strictly below the ceiling unless the source returns exactly 1.
  return Math.min(Math.floor(r * ceiling), ceiling);
}
