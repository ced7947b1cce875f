import { type AnchorRequirement, anchorInvalidResult, anchorViolation } from "../core/run/anchors.js";
import {
  type Disclosure,
  type EvidenceContext,
  type EvidenceSource,
  normalizeResult,
  type ProviderMissing,
  providerErrorResult,
  REDACT_ALL,
  redactValue,
} from "../core/run/evidence.js";
import type { EvidenceResult } from "../core/run/schema.js";
import type { EvidenceQuery, ScenarioSpec } from "../core/spec/schema.js";
import { sanitizeCorrelationId } from "./mcp/correlation.js";
import { type EvidenceProvider, EvidenceProviderFailure } from "./provider.js";
import { AUDIT, applySignaturePolicy, type SignaturePolicy } from "./trust/signature.js";

export interface EvidencePipelineOptions {
  providers: readonly EvidenceProvider[];
  /** The signature policy of providers without their own (`[trust] default_policy`). */
  defaultSignaturePolicy?: SignaturePolicy;
  /** Per-provider signature policies (a provider's `trust`). */
  signaturePolicies?: ReadonlyMap<string, SignaturePolicy>;
  /** `[anchors]` requirements keyed by provider id. */
  anchors?: ReadonlyMap<string, AnchorRequirement>;
  /** The disclosure policy for `evidence_query` answers. */
  disclosure?: Disclosure;
}

/**
 * The trust pipeline: the one place that decides, in one order, what evidence the engine may use.
 *
 * For every query: the correlation id is sanitized, the provider answers, the answer's signature and
 * evidence hash are checked against the provider's signature policy (from configuration only), and the
 * anchor is checked against `[anchors]`. A failure of the first three is a provider failure (recorded as
 * `provider_error`); an anchor failure replaces the answer with an `anchor_invalid` one. The control plane
 * then clears failed answers, recomputes the evidence hash, applies the comparator and finally the trust-lane
 * minimum of each gate and condition (src/core/run/evidence.ts).
 */
export class EvidencePipeline implements EvidenceSource {
  private readonly providers: ReadonlyMap<string, EvidenceProvider>;
  private readonly defaultSignaturePolicy: SignaturePolicy;
  private readonly signaturePolicies: ReadonlyMap<string, SignaturePolicy>;
  private readonly anchors: ReadonlyMap<string, AnchorRequirement>;
  private readonly disclosure: Disclosure;

  constructor(options: EvidencePipelineOptions) {
    this.providers = new Map(options.providers.map((provider) => [provider.providerId, provider]));
    this.defaultSignaturePolicy = options.defaultSignaturePolicy ?? AUDIT;
    this.signaturePolicies = options.signaturePolicies ?? new Map();
    this.anchors = options.anchors ?? new Map();
    this.disclosure = options.disclosure ?? REDACT_ALL;
  }

  /** An answer the engine may decide on (engine path: signatures and anchors enforced). */
  async query(query: EvidenceQuery, context: EvidenceContext): Promise<EvidenceResult> {
    const answer = await this.signedAnswer(query, context);
    if (answer.error !== null) return answer;
    const requirement = this.anchors.get(query.provider_id);
    const violation = requirement === undefined ? null : anchorViolation(answer, requirement);
    return violation === null ? answer : anchorInvalidResult(violation);
  }

  /**
   * The `evidence_query` tool's answer: never a failure (a provider failure is an answer with an error), the
   * provider's hash kept or filled in, and the value withheld unless the disclosure policy reveals it.
   * Anchors and trust lanes are not applied: no decision is made from this answer.
   */
  async answer(query: EvidenceQuery, context: EvidenceContext): Promise<EvidenceResult> {
    let result: EvidenceResult;
    try {
      result = await this.signedAnswer(query, context);
      if (result.evidence_hash === null) result = normalizeResult(result);
    } catch (error) {
      result = providerErrorResult(error);
    }
    if (result.error !== null) result = normalizeResult(result);
    return this.disclosure.allowsRaw(query.provider_id) ? result : redactValue(result);
  }

  validateProviders(spec: ScenarioSpec): ProviderMissing | null {
    const missing = spec.conditions.filter((condition) => !this.providers.has(condition.query.provider_id));
    if (missing.length === 0) return null;
    const sortedUnique = (items: string[]) => [...new Set(items)].sort();
    return {
      missing_providers: sortedUnique(missing.map((condition) => condition.query.provider_id)),
      required_capabilities: sortedUnique(missing.map((condition) => condition.query.check_id)),
      blocked_by_policy: false,
    };
  }

  async close(): Promise<void> {
    await Promise.all([...this.providers.values()].map((provider) => provider.close?.()));
  }

  private async signedAnswer(query: EvidenceQuery, context: EvidenceContext): Promise<EvidenceResult> {
    const correlationId = sanitizeCorrelationId(context.correlation_id);
    const provider = this.providers.get(query.provider_id);
    if (provider === undefined) throw new EvidenceProviderFailure(`provider not registered: ${query.provider_id}`);
    const answer = await provider.query(query, { ...context, correlation_id: correlationId });
    return applySignaturePolicy(answer, this.signaturePolicies.get(query.provider_id) ?? this.defaultSignaturePolicy);
  }
}
