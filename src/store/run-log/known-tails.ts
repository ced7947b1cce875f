import { LruMap } from "../../core/lru-map.js";
import type { StoredRecord } from "./backend.js";

/**
 * The newest record of a run as this process last wrote or verified it, with the chain tip it ends. While a run's
 * head still names that tip, opening the run compares the stored tail with it byte for byte instead of decoding
 * and hashing it again (a differing byte, column or link falls back to the full check, and so still fails closed).
 */
export interface KnownTail {
  chainTip: string;
  row: StoredRecord & { record_json: Uint8Array };
}

/** Runs whose tails are remembered (each costs about one record's bytes). */
const KNOWN_TAILS = 4096;

/** The tails a store wrote or verified, by run key text, least recently used first. */
export class KnownTails {
  private readonly tails = new LruMap<string, KnownTail>(KNOWN_TAILS);

  get(run: string): KnownTail | undefined {
    return this.tails.get(run);
  }

  /** Keeps `tail` as the run's newest record (undefined: nothing to remember, e.g. an empty log). */
  remember(run: string, tail: KnownTail | undefined): void {
    if (tail === undefined) this.tails.delete(run);
    else this.tails.set(run, tail);
  }
}
