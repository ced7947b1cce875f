import { z } from "zod";
import type { TrustPolicy } from "../../core/run/evidence.js";
import { TrustLane } from "../../core/wire/common.js";

/** A signature policy as configured: `"audit"` or `{ require_signature = { keys = [...] } }`. */
export const SignatureSetting = z.union([
  z.literal("audit"),
  z.strictObject({ require_signature: z.strictObject({ keys: z.array(z.string()).min(1) }) }),
]);
export type SignatureSetting = z.output<typeof SignatureSetting>;

/** `[trust]`. */
export const TrustConfig = z.object({
  default_policy: SignatureSetting.default("audit"),
  min_lane: TrustLane.default("verified"),
});
export type TrustConfig = z.output<typeof TrustConfig>;

/** `[dev]`: dev-permissive mode (evidence §5.1). */
export const DevConfig = z.object({
  permissive: z.boolean().default(false),
  permissive_scope: z.literal("asserted_evidence_only").default("asserted_evidence_only"),
  permissive_ttl_days: z.bigint().gte(1n).optional(),
  permissive_warn: z.boolean().default(true),
  permissive_exempt_providers: z.array(z.string()).default(["assetcore_read", "assetcore"]),
});
export type DevConfig = z.output<typeof DevConfig>;

/**
 * The trust-lane minimum decisions apply. Dev-permissive lowers the global minimum to `asserted`, except for
 * the exempt providers, which keep the configured minimum.
 */
export function effectiveTrustPolicy(trust: TrustConfig, dev: DevConfig): TrustPolicy {
  if (!dev.permissive) return { minLane: trust.min_lane };
  return {
    minLane: "asserted",
    providerMinLanes: new Map(dev.permissive_exempt_providers.map((provider) => [provider, trust.min_lane])),
  };
}
