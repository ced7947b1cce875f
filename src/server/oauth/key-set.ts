import { createLocalJWKSet, type JWTVerifyGetKey } from "jose";
import { fetchJson } from "./discovery.js";

export interface KeySetTiming {
  /** The least time between two fetch attempts, successful or not. */
  cooldownMs: number;
  /** How long fetched keys are used before they are fetched again, even when every `kid` is known. */
  maxAgeMs: number;
  now: () => number;
}

/** The key set could not be fetched, and there are no keys fetched before to fall back on. */
export class KeySetUnavailableError extends Error {}

/**
 * The authorization server's signing keys (a JWKS), fetched on first use and cached. They are fetched again when
 * older than `maxAgeMs`, or for a token whose `kid` is unknown (key rotation), at most once per cooldown either way,
 * so forged `kid`s cannot flood the authorization server. When a fetch fails, the keys fetched before stay in use:
 * an outage of the key endpoint does not refuse tokens the server could still verify. jose selects the key.
 */
export class KeySet {
  private keys: JWTVerifyGetKey | null = null;
  private fetchedAt = Number.NEGATIVE_INFINITY;
  private attemptedAt = Number.NEGATIVE_INFINITY;
  private pending: Promise<void> | null = null;
  private lastFailure: Error | null = null;

  /** `locate` resolves the key set's URL (configured, or discovered from the issuer's metadata). */
  constructor(
    private readonly locate: () => Promise<string>,
    private readonly timing: KeySetTiming,
  ) {}

  /** The key that verifies a token, for jose's `jwtVerify`. */
  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    if (this.keys === null || this.timing.now() - this.fetchedAt >= this.timing.maxAgeMs) await this.refresh();
    try {
      return await this.current()(header, token);
    } catch (error) {
      if ((error as { code?: string }).code !== "ERR_JWKS_NO_MATCHING_KEY" || this.coolingDown()) throw error;
      await this.refresh();
      return this.current()(header, token);
    }
  };

  private current(): JWTVerifyGetKey {
    if (this.keys !== null) return this.keys;
    throw new KeySetUnavailableError(this.lastFailure?.message ?? "key set not fetched yet");
  }

  private coolingDown(): boolean {
    return this.timing.now() - this.attemptedAt < this.timing.cooldownMs;
  }

  /** One fetch at a time, and none during the cooldown; a failure only matters when there are no keys yet. */
  private async refresh(): Promise<void> {
    if (this.pending === null && !this.coolingDown()) {
      this.attemptedAt = this.timing.now();
      this.pending = this.fetchKeys()
        .then(
          () => {
            this.lastFailure = null;
          },
          (error: unknown) => {
            this.lastFailure = error instanceof Error ? error : new Error(String(error));
          },
        )
        .finally(() => {
          this.pending = null;
        });
    }
    await this.pending;
  }

  private async fetchKeys(): Promise<void> {
    const url = await this.locate();
    const json = await fetchJson(url, "application/jwk-set+json, application/json");
    try {
      this.keys = createLocalJWKSet(json as Parameters<typeof createLocalJWKSet>[0]);
    } catch {
      throw new Error(`${url}: not a JSON Web Key Set`);
    }
    this.fetchedAt = this.timing.now();
  }
}
