import { z } from "zod";
import {
  AnyJson,
  Bytes,
  HashDigest,
  NamespaceId,
  nullable,
  omittedWhenNull,
  TenantId,
  Timestamp,
  TrustRequirement,
  U64,
} from "../wire/common.js";

/* Wire types of a scenario spec (engine §1, §2.1). Field order follows the reference's declaration order. */

export const COMPARATORS = [
  "equals",
  "not_equals",
  "greater_than",
  "greater_than_or_equal",
  "less_than",
  "less_than_or_equal",
  "lex_greater_than",
  "lex_greater_than_or_equal",
  "lex_less_than",
  "lex_less_than_or_equal",
  "contains",
  "in_set",
  "deep_equals",
  "deep_not_equals",
  "exists",
  "not_exists",
] as const;
export const Comparator = z.enum(COMPARATORS);
export type Comparator = z.output<typeof Comparator>;

export type Requirement =
  | { Condition: string }
  | { Not: Requirement }
  | { And: Requirement[] }
  | { Or: Requirement[] }
  | { RequireGroup: { min: bigint; reqs: Requirement[] } };

/** Externally tagged: an object with exactly one of the five PascalCase keys. */
export const Requirement: z.ZodType<Requirement> = z.lazy(() =>
  z.union(
    [
      z.strictObject({ Condition: z.string() }),
      z.strictObject({ Not: Requirement }),
      z.strictObject({ And: z.array(Requirement) }),
      z.strictObject({ Or: z.array(Requirement) }),
      z.strictObject({
        RequireGroup: z.object({ min: z.bigint().gte(0n).lte(255n), reqs: z.array(Requirement) }),
      }),
    ],
    { error: "expected an object with exactly one of Condition, Not, And, Or, RequireGroup" },
  ),
);

export const ContentRef = z.object({
  uri: z.string(),
  content_hash: HashDigest,
  encryption: nullable(z.string()),
});

export const PacketPayload = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("json"), value: AnyJson }),
  z.object({ kind: z.literal("bytes"), bytes: Bytes }),
  z.object({ kind: z.literal("external"), content_ref: ContentRef }),
]);
export type PacketPayload = z.output<typeof PacketPayload>;

export const PacketSpec = z.object({
  packet_id: z.string(),
  schema_id: z.string(),
  content_type: z.string(),
  visibility_labels: z.array(z.string()),
  policy_tags: z.array(z.string()),
  expiry: nullable(Timestamp),
  payload: PacketPayload,
});
export type PacketSpec = z.output<typeof PacketSpec>;

export const GateOutcome = z.enum(["true", "false", "unknown"]);
export type GateOutcome = z.output<typeof GateOutcome>;

export const BranchRule = z.object({ gate_id: z.string(), outcome: GateOutcome, next_stage_id: z.string() });
export type BranchRule = z.output<typeof BranchRule>;

export const AdvanceTo = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("linear") }),
  z.object({ kind: z.literal("fixed"), stage_id: z.string() }),
  z.object({ kind: z.literal("branch"), branches: z.array(BranchRule), default: nullable(z.string()) }),
  z.object({ kind: z.literal("terminal") }),
]);
export type AdvanceTo = z.output<typeof AdvanceTo>;

export const TimeoutPolicy = z.enum(["fail", "advance_with_flag", "alternate_branch"]);
export type TimeoutPolicy = z.output<typeof TimeoutPolicy>;

export const TimeoutSpec = z.object({ timeout_ms: U64, policy_tags: z.array(z.string()) });

export const GateSpec = z.object({
  gate_id: z.string(),
  requirement: Requirement,
  trust: omittedWhenNull(TrustRequirement),
});
export type GateSpec = z.output<typeof GateSpec>;

export const StageSpec = z.object({
  stage_id: z.string(),
  entry_packets: z.array(PacketSpec),
  gates: z.array(GateSpec),
  advance_to: AdvanceTo,
  timeout: nullable(TimeoutSpec),
  on_timeout: TimeoutPolicy,
});
export type StageSpec = z.output<typeof StageSpec>;

export const EvidenceQuery = z.object({
  provider_id: z.string(),
  check_id: z.string(),
  params: omittedWhenNull(AnyJson),
});
export type EvidenceQuery = z.output<typeof EvidenceQuery>;

export const ConditionSpec = z.object({
  condition_id: z.string(),
  query: EvidenceQuery,
  comparator: Comparator,
  /** `null` means "no expected value": the reference cannot tell an explicit null from an absent key. */
  expected: nullable(AnyJson),
  policy_tags: z.array(z.string()),
  trust: omittedWhenNull(TrustRequirement),
});
export type ConditionSpec = z.output<typeof ConditionSpec>;

export const PolicyRef = z.object({ policy_id: z.string(), description: nullable(z.string()) });
export const SchemaRef = z.object({ schema_id: z.string(), version: nullable(z.string()), uri: nullable(z.string()) });

export const ScenarioSpec = z.object({
  scenario_id: z.string(),
  namespace_id: NamespaceId,
  spec_version: z.string(),
  stages: z.array(StageSpec),
  conditions: z.array(ConditionSpec),
  policies: z.array(PolicyRef),
  schemas: z.array(SchemaRef),
  default_tenant_id: nullable(TenantId),
});
export type ScenarioSpec = z.output<typeof ScenarioSpec>;
