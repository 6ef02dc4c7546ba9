/**
 * A token bucket: holds up to `capacity` tokens, refilled continuously at `refillPerSec`. `take`
 * refuses without taking; `charge` takes even into debt (for bytes that have already arrived).
 */
export class TokenBucket {
  #tokens: number;
  #last: number;

  constructor(
    readonly capacity: number,
    readonly refillPerSec: number,
    now = Date.now(),
  ) {
    this.#tokens = capacity;
    this.#last = now;
  }

  /** Tokens available now (negative while in debt). */
  tokens(now = Date.now()): number {
    this.#refill(now);
    return this.#tokens;
  }

  /** Takes `n` tokens and returns 0, or takes nothing and returns the ms until `n` are available. */
  take(n = 1, now = Date.now()): number {
    this.#refill(now);
    if (this.#tokens >= n) {
      this.#tokens -= n;
      return 0;
    }
    if (n > this.capacity || this.refillPerSec <= 0) return Number.POSITIVE_INFINITY;
    return Math.ceil(((n - this.#tokens) * 1000) / this.refillPerSec);
  }

  /** Takes `n` tokens, going into debt if need be. */
  charge(n: number, now = Date.now()): void {
    this.#refill(now);
    this.#tokens -= n;
  }

  /** Ms until the bucket is out of debt (0 when it is not in debt). */
  debtMs(now = Date.now()): number {
    this.#refill(now);
    if (this.#tokens >= 0) return 0;
    return this.refillPerSec <= 0
      ? Number.POSITIVE_INFINITY
      : Math.ceil((-this.#tokens * 1000) / this.refillPerSec);
  }

  /** True when full: nothing is remembered that a new bucket would not also know. */
  full(now = Date.now()): boolean {
    this.#refill(now);
    return this.#tokens >= this.capacity;
  }

  #refill(now: number): void {
    const elapsed = now - this.#last;
    if (elapsed <= 0) return;
    this.#last = now;
    this.#tokens = Math.min(this.capacity, this.#tokens + (elapsed * this.refillPerSec) / 1000);
  }
}
