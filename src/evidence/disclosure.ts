import { z } from "zod";
import type { Disclosure } from "../core/run/evidence.js";

/** `[evidence]`: whether raw evidence values may be revealed. */
export const EvidenceConfig = z.object({
  allow_raw_values: z.boolean().default(false),
  require_provider_opt_in: z.boolean().default(true),
});
export type EvidenceConfig = z.output<typeof EvidenceConfig>;

/**
 * The disclosure formula (evidence §4): raw values of a provider may be revealed iff
 * `allow_raw_values && (!require_provider_opt_in || provider.allow_raw)`. Unknown providers never opted in.
 * The same answer governs `evidence_query`, feedback, the run store and runpacks.
 */
export function disclosurePolicy(config: EvidenceConfig, providersAllowingRaw: Iterable<string>): Disclosure {
  const optedIn = new Set(providersAllowingRaw);
  return {
    allowsRaw: (providerId) => config.allow_raw_values && (!config.require_provider_opt_in || optedIn.has(providerId)),
  };
}
