import type { EvidenceContext, EvidenceSource, ProviderMissing } from "../../src/core/run/evidence.js";
import { EvidenceProviderFailure } from "../../src/core/run/evidence.js";
import type { EvidenceResult } from "../../src/core/run/schema.js";
import type { EvidenceQuery, ScenarioSpec } from "../../src/core/spec/schema.js";
import type { JsonValue } from "../../src/json/value.js";

/**
 * A test evidence source standing in for the built-in `time` provider: `time.after`/`time.before` answer from
 * the trigger time with the reference's anchor. Other providers can be scripted per condition.
 */
export class TimeEvidence implements EvidenceSource {
  readonly queries: Array<{ query: EvidenceQuery; context: EvidenceContext }> = [];
  private readonly scripted = new Map<string, (context: EvidenceContext) => EvidenceResult | Promise<EvidenceResult>>();
  private readonly registered = new Set(["time"]);

  /** Registers a provider whose every check answers with `answer`. */
  script(providerId: string, answer: (context: EvidenceContext) => EvidenceResult | Promise<EvidenceResult>): this {
    this.scripted.set(providerId, answer);
    this.registered.add(providerId);
    return this;
  }

  unregister(providerId: string): this {
    this.registered.delete(providerId);
    return this;
  }

  async query(query: EvidenceQuery, context: EvidenceContext): Promise<EvidenceResult> {
    this.queries.push({ query, context });
    const scripted = this.scripted.get(query.provider_id);
    if (scripted !== undefined) return scripted(context);
    if (query.provider_id !== "time")
      throw new EvidenceProviderFailure(`provider not registered: ${query.provider_id}`);
    const params = query.params as { timestamp?: unknown } | undefined;
    if (typeof params?.timestamp !== "bigint") throw new EvidenceProviderFailure("missing timestamp param");
    const now = context.trigger_time.value;
    const value = query.check_id === "after" ? now > params.timestamp : now < params.timestamp;
    const anchorType = context.trigger_time.kind === "logical" ? "trigger_time_logical" : "trigger_time_unix_millis";
    return jsonResult(value, { anchor_type: anchorType, anchor_value: String(now) });
  }

  validateProviders(spec: ScenarioSpec): ProviderMissing | null {
    const missing = spec.conditions.filter((condition) => !this.registered.has(condition.query.provider_id));
    if (missing.length === 0) return null;
    return {
      missing_providers: [...new Set(missing.map((condition) => condition.query.provider_id))].sort(),
      required_capabilities: [...new Set(missing.map((condition) => condition.query.check_id))].sort(),
      blocked_by_policy: false,
    };
  }
}

export function jsonResult(
  value: JsonValue,
  anchor: { anchor_type: string; anchor_value: string } | null = null,
  lane: "verified" | "asserted" = "verified",
): EvidenceResult {
  return {
    value: { kind: "json", value },
    lane,
    error: null,
    evidence_hash: null,
    evidence_ref: null,
    evidence_anchor: anchor,
    signature: null,
    content_type: "application/json",
  };
}
