import { type FeedbackLevel, feedbackRank } from "../../config/schema.js";
import type { AuthContext } from "../context.js";
import type { PrincipalDirectory } from "./principals.js";

export type { FeedbackLevel };

/** `[server.feedback.scenario_next]`. */
export interface FeedbackPolicy {
  default: FeedbackLevel;
  local_only_default: FeedbackLevel;
  max: FeedbackLevel;
  trace_subjects: readonly string[];
  trace_roles: readonly string[];
  evidence_subjects: readonly string[];
  evidence_roles: readonly string[];
}

export interface FeedbackGrant {
  level: FeedbackLevel;
  deniedReason: string | null;
  /** Whether a `feedback` block is part of the response at all. */
  emit: boolean;
}

/**
 * Decides how much a `scenario_next` caller may see (interface §4.6): the requested level (or the default for
 * its kind of caller), capped by `max`, then granted only to the subjects and roles allowed for it.
 */
export function grantFeedback(
  policy: FeedbackPolicy,
  requested: FeedbackLevel | null,
  auth: AuthContext,
  roles: PrincipalDirectory,
  scope: { tenant_id: bigint; namespace_id: bigint },
): FeedbackGrant {
  const wanted = requested ?? (auth.method === "local" ? policy.local_only_default : policy.default);
  const principalRoles = new Set(roles.rolesIn(auth.principalId, scope));
  const allowed = (subjects: readonly string[], roleNames: readonly string[]) =>
    subjects.includes(auth.principalId) || roleNames.some((role) => principalRoles.has(role));
  let level: FeedbackLevel = feedbackRank(wanted) > feedbackRank(policy.max) ? policy.max : wanted;
  if (level === "evidence" && !allowed(policy.evidence_subjects, policy.evidence_roles)) level = "trace";
  if (level === "trace" && !allowed(policy.trace_subjects, policy.trace_roles)) level = "summary";
  const denied = feedbackRank(level) < feedbackRank(wanted);
  return {
    level,
    deniedReason: denied ? `feedback level denied (requested=${wanted}, allowed=${level})` : null,
    emit: level !== "summary" || requested !== null || denied,
  };
}
