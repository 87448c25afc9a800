/**
 * How long to wait before reconnecting: exponential backoff, capped, with jitter so that the
 * members of a room that lost the server at the same moment do not all come back at once.
 */

export interface BackoffOptions {
  /** The wait before the first attempt to reconnect. */
  initialDelayMs: number;
  /** The longest wait, however many attempts failed. */
  maxDelayMs: number;
  /** How much longer each wait is than the one before. */
  factor: number;
  /**
   * The share of each wait that is random, from 0 (none) to 1: a wait of `d` becomes a random
   * one between `d × (1 − jitter)` and `d`.
   */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = {
  initialDelayMs: 500,
  maxDelayMs: 15_000,
  factor: 2,
  jitter: 0.5,
};

/** The wait before attempt `attempt` (1 for the first reconnection), given a random number in [0, 1). */
export function backoffDelay(attempt: number, options: BackoffOptions, random: number): number {
  const exponent = Math.max(0, attempt - 1);
  const uncapped = options.initialDelayMs * Math.pow(options.factor, exponent);
  const capped = Math.min(options.maxDelayMs, Number.isFinite(uncapped) ? uncapped : options.maxDelayMs);
  const jitter = Math.min(1, Math.max(0, options.jitter));
  return Math.round(capped * (1 - jitter * random));
}
