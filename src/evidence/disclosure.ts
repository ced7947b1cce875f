import { z } from "zod";
import { type Disclosure, KEEP_ALL, redactValue } from "../core/run/evidence.js";
import type { GateEvalRecord } from "../core/run/schema.js";
import type { ScenarioSpec } from "../core/spec/schema.js";

/** `[evidence]`: whether raw evidence values may be revealed, and whether they are recorded. */
export const EvidenceConfig = z.object({
  allow_raw_values: z.boolean().default(false),
  require_provider_opt_in: z.boolean().default(true),
  record_raw_values: z
    .boolean()
    .default(true)
    .describe(
      "Record raw evidence values in run state and runpacks, as the reference does (disclosure then governs only " +
        "`evidence_query` answers and `scenario_next` feedback). `false` records a value only where the disclosure " +
        "policy reveals it, which changes `gate_evals.json` and so every runpack root hash versus the reference.",
    ),
});
export type EvidenceConfig = z.output<typeof EvidenceConfig>;

/**
 * The disclosure formula (evidence §4): raw values of a provider may be revealed iff
 * `allow_raw_values && (!require_provider_opt_in || provider.allow_raw)`. Unknown providers never opted in.
 * It governs `evidence_query` answers and `scenario_next` feedback, and what is recorded only under
 * `record_raw_values = false` (see `recordingPolicy`).
 */
export function disclosurePolicy(config: EvidenceConfig, providersAllowingRaw: Iterable<string>): Disclosure {
  const optedIn = new Set(providersAllowingRaw);
  return {
    allowsRaw: (providerId) => config.allow_raw_values && (!config.require_provider_opt_in || optedIn.has(providerId)),
  };
}

/** What the run store keeps: every value (the reference), or only what `disclosure` reveals. */
export function recordingPolicy(config: EvidenceConfig, disclosure: Disclosure): Disclosure {
  return config.record_raw_values ? KEEP_ALL : disclosure;
}

/**
 * Gate records as `scenario_next` feedback at level `evidence` shows them (evidence §4): each result is redacted
 * under the disclosure policy of its condition's provider (from the spec; a condition the spec does not name is
 * redacted), and failed results also lose their evidence hash.
 */
export function disclosedGateRecords(
  spec: ScenarioSpec,
  records: readonly GateEvalRecord[],
  disclosure: Disclosure,
): GateEvalRecord[] {
  const providers = new Map(spec.conditions.map((condition) => [condition.condition_id, condition.query.provider_id]));
  const reveals = (conditionId: string) => {
    const provider = providers.get(conditionId);
    return provider !== undefined && disclosure.allowsRaw(provider);
  };
  return records.map((record) => ({
    ...record,
    evidence: record.evidence.map((entry) => {
      if (entry.result.error !== null) {
        return { ...entry, result: { ...redactValue(entry.result), evidence_hash: null } };
      }
      return reveals(entry.condition_id) ? entry : { ...entry, result: redactValue(entry.result) };
    }),
  }));
}
