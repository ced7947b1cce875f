import { LimitError } from "../core/errors.js";

/** `[server.limits.rate_limit]`: `max_requests` per `window_ms` per principal, for at most `max_entries` keys. */
export interface RateLimitSettings {
  max_requests: number;
  window_ms: number;
  max_entries: number;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

/**
 * A token bucket per key (D7): each key may burst up to `max_requests`, refilled continuously at
 * `max_requests / window_ms`. Keys are authenticated principals, so unauthenticated noise cannot drain another
 * caller's bucket. When every tracked key is busy and the table is full, new keys are refused as overload.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly refillPerMs: number;

  constructor(
    private readonly settings: RateLimitSettings,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.refillPerMs = settings.max_requests / settings.window_ms;
  }

  /** Takes one token for `key`, or throws `rate_limited` (with the wait) or `inflight_limit` (table full). */
  take(key: string): void {
    const now = this.now();
    const bucket = this.buckets.get(key) ?? this.newBucket(now);
    bucket.tokens = Math.min(this.settings.max_requests, bucket.tokens + (now - bucket.updatedAt) * this.refillPerMs);
    bucket.updatedAt = now;
    this.buckets.set(key, bucket);
    if (bucket.tokens < 1) {
      const retryAfterMs = Math.ceil((1 - bucket.tokens) / this.refillPerMs);
      throw new LimitError("rate_limited", "rate limit exceeded", retryAfterMs);
    }
    bucket.tokens -= 1;
  }

  private newBucket(now: number): Bucket {
    if (this.buckets.size >= this.settings.max_entries) this.evictRefilled(now);
    if (this.buckets.size >= this.settings.max_entries) {
      throw new LimitError("inflight_limit", "rate limiter overloaded");
    }
    return { tokens: this.settings.max_requests, updatedAt: now };
  }

  /** Forgets keys whose bucket would be full again: they are indistinguishable from new ones. */
  private evictRefilled(now: number): void {
    for (const [key, bucket] of this.buckets) {
      if (bucket.tokens + (now - bucket.updatedAt) * this.refillPerMs >= this.settings.max_requests) {
        this.buckets.delete(key);
      }
    }
  }
}
