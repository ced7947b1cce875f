import { z } from "zod";
import { ControlPlaneError, InvalidInputError } from "../errors.js";
import type { DispatchTarget, PacketEnvelope } from "../run/schema.js";
import type { PacketPayload } from "../spec/schema.js";

/*
 * The packet dispatch policy (`[policy]`, evidence §6.1): asked once per packet and dispatch target whether the
 * packet may be disclosed. Validation messages keep the reference's wording after a description of the field.
 */

export const TARGET_KINDS = ["agent", "session", "external", "channel"] as const;
export const DispatchTargetKind = z.enum(TARGET_KINDS);
export type DispatchTargetKind = z.output<typeof DispatchTargetKind>;

const stringList = z.array(z.string()).default([]);

export const TargetSelector = z
  .object({
    target_kind: DispatchTargetKind,
    target_id: z.string().optional(),
    system: z.string().optional(),
    target: z.string().optional(),
  })
  .superRefine((selector, ctx) => {
    if (selector.target_kind === "external") {
      if (selector.target_id !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["target_id"],
          message: "not allowed for target_kind external (external target must not set target_id)",
        });
      }
      if (selector.system === undefined && selector.target === undefined) {
        ctx.addIssue({
          code: "custom",
          message: "system or target is required for target_kind external (external target requires system or target)",
        });
      }
      return;
    }
    for (const key of ["system", "target"] as const) {
      if (selector[key] === undefined) continue;
      ctx.addIssue({
        code: "custom",
        path: [key],
        message: `only allowed for target_kind external (non-external targets must not set system/target)`,
      });
    }
  });
export type TargetSelector = z.output<typeof TargetSelector>;

export const RuleEffect = z.enum(["permit", "deny", "error"]);
export type RuleEffect = z.output<typeof RuleEffect>;

const MATCH_CRITERIA = [
  "target_kinds",
  "targets",
  "require_labels",
  "forbid_labels",
  "require_policy_tags",
  "forbid_policy_tags",
  "content_types",
  "schema_ids",
  "packet_ids",
  "stage_ids",
  "scenario_ids",
] as const;

export const StaticRule = z
  .object({
    effect: RuleEffect,
    error_message: z.string().optional(),
    target_kinds: z.array(DispatchTargetKind).default([]),
    targets: z.array(TargetSelector).default([]),
    require_labels: stringList,
    forbid_labels: stringList,
    require_policy_tags: stringList,
    forbid_policy_tags: stringList,
    content_types: stringList,
    schema_ids: stringList,
    packet_ids: stringList,
    stage_ids: stringList,
    scenario_ids: stringList,
  })
  .superRefine((rule, ctx) => {
    if (MATCH_CRITERIA.every((criterion) => rule[criterion].length === 0)) {
      ctx.addIssue({
        code: "custom",
        message: `at least one of ${MATCH_CRITERIA.join(", ")} must be non-empty (rule must include at least one match criterion)`,
      });
    }
    if (rule.effect === "error" && !rule.error_message) {
      ctx.addIssue({
        code: "custom",
        path: ["error_message"],
        message: `required when effect is "error" (error effect requires error_message)`,
      });
    }
  });
export type StaticRule = z.output<typeof StaticRule>;

export const StaticPolicyConfig = z.object({
  default: z
    .enum(["permit", "deny"], { error: `expected "permit" or "deny" (static policy default must be permit or deny)` })
    .default("deny"),
  rules: z.array(StaticRule).default([]),
});
export type StaticPolicyConfig = z.output<typeof StaticPolicyConfig>;

export const DispatchPolicyConfig = z
  .object({
    engine: z.enum(["permit_all", "deny_all", "static"]).default("permit_all"),
    static: StaticPolicyConfig.optional(),
  })
  .superRefine((config, ctx) => {
    if (config.engine === "static" && config.static === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["static"],
        message: `required when engine is "static" (policy.engine=static requires policy.static)`,
      });
    }
    if (config.engine !== "static" && config.static !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["static"],
        message: `not allowed when engine is "${config.engine}" (policy.static only allowed when engine=static)`,
      });
    }
  });
export type DispatchPolicyConfig = z.output<typeof DispatchPolicyConfig>;

export type DispatchDecision = "permit" | "deny";

export interface DispatchPolicy {
  /** Decides whether `envelope` may go to `target`; throws `ControlPlaneError("policy_error")` for an error rule. */
  authorize(target: DispatchTarget, envelope: PacketEnvelope, payload: PacketPayload): DispatchDecision;
}

export function createDispatchPolicy(config: DispatchPolicyConfig): DispatchPolicy {
  switch (config.engine) {
    case "permit_all":
      return { authorize: () => "permit" };
    case "deny_all":
      return { authorize: () => "deny" };
    case "static": {
      const table = config.static;
      if (table === undefined) throw new InvalidInputError("policy.static is required for static engine");
      return { authorize: (target, envelope) => evaluateStaticPolicy(table, target, envelope) };
    }
  }
}

function evaluateStaticPolicy(
  table: StaticPolicyConfig,
  target: DispatchTarget,
  envelope: PacketEnvelope,
): DispatchDecision {
  const rule = table.rules.find((candidate) => ruleMatches(candidate, target, envelope));
  if (rule === undefined) return table.default;
  if (rule.effect === "error") {
    throw new ControlPlaneError("policy_error", `policy decision error: ${rule.error_message ?? "policy rule error"}`);
  }
  return rule.effect;
}

/** Every non-empty criterion must match; an empty list places no constraint. */
function ruleMatches(rule: StaticRule, target: DispatchTarget, envelope: PacketEnvelope): boolean {
  const { labels, policy_tags } = envelope.visibility;
  return (
    anyOrEmpty(rule.target_kinds, (kind) => kind === target.kind) &&
    anyOrEmpty(rule.targets, (selector) => selectorMatches(selector, target)) &&
    rule.require_labels.every((label) => labels.includes(label)) &&
    !rule.forbid_labels.some((label) => labels.includes(label)) &&
    rule.require_policy_tags.every((tag) => policy_tags.includes(tag)) &&
    !rule.forbid_policy_tags.some((tag) => policy_tags.includes(tag)) &&
    oneOfOrEmpty(rule.content_types, envelope.content_type) &&
    oneOfOrEmpty(rule.schema_ids, envelope.schema_id) &&
    oneOfOrEmpty(rule.packet_ids, envelope.packet_id) &&
    oneOfOrEmpty(rule.stage_ids, envelope.stage_id) &&
    oneOfOrEmpty(rule.scenario_ids, envelope.scenario_id)
  );
}

function anyOrEmpty<T>(items: readonly T[], predicate: (item: T) => boolean): boolean {
  return items.length === 0 || items.some(predicate);
}

function oneOfOrEmpty(allowed: readonly string[], value: string): boolean {
  return allowed.length === 0 || allowed.includes(value);
}

/** An unset `target_id`, `system` or `target` matches any value. */
function selectorMatches(selector: TargetSelector, target: DispatchTarget): boolean {
  if (selector.target_kind !== target.kind) return false;
  const matchesIfSet = (expected: string | undefined, actual: string) => expected === undefined || expected === actual;
  switch (target.kind) {
    case "agent":
      return matchesIfSet(selector.target_id, target.agent_id);
    case "session":
      return matchesIfSet(selector.target_id, target.session_id);
    case "channel":
      return matchesIfSet(selector.target_id, target.channel);
    case "external":
      return matchesIfSet(selector.system, target.system) && matchesIfSet(selector.target, target.target);
  }
}
