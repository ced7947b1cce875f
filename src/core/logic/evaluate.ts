import type { TraceEntry } from "../run/schema.js";
import type { Requirement } from "../spec/schema.js";
import type { TriState } from "../wire/common.js";
import { and, not, or } from "./tristate.js";

/** Deepest node depth (number of ancestors) the evaluator accepts; deeper trees evaluate to Unknown. */
export const MAX_EVAL_DEPTH = 32;

export interface RequirementEvaluation {
  status: TriState;
  /** Every Condition leaf visited, in visit order, duplicates kept. */
  trace: TraceEntry[];
}

/** Signals that a node sits deeper than MAX_EVAL_DEPTH; caught once, at the top. */
class DepthExceeded extends Error {}

/**
 * Evaluates a requirement tree in Kleene logic (engine §2.2). Every child is evaluated, depth-first and left to
 * right, with no short-circuit, so the trace lists every leaf. A node deeper than MAX_EVAL_DEPTH aborts the whole
 * evaluation with Unknown; the leaves traced before the abort are kept. The depth guard also bounds recursion.
 */
export function evaluateRequirement(
  requirement: Requirement,
  statusOf: (conditionId: string) => TriState,
): RequirementEvaluation {
  const trace: TraceEntry[] = [];

  const visit = (node: Requirement, depth: number): TriState => {
    if (depth > MAX_EVAL_DEPTH) throw new DepthExceeded();
    if ("Condition" in node) {
      const status = statusOf(node.Condition);
      trace.push({ condition_id: node.Condition, status });
      return status;
    }
    if ("Not" in node) return not(visit(node.Not, depth + 1));
    const children = "And" in node ? node.And : "Or" in node ? node.Or : node.RequireGroup.reqs;
    const statuses = children.map((child) => visit(child, depth + 1));
    if ("And" in node) return statuses.reduce(and, "True");
    if ("Or" in node) return statuses.reduce(or, "False");
    return requireGroup(node.RequireGroup.min, statuses);
  };

  try {
    return { status: visit(requirement, 0), trace };
  } catch (error) {
    if (error instanceof DepthExceeded) return { status: "Unknown", trace };
    throw error;
  }
}

/** At least `min` of the children must be True; Unknown while the Unknown children could still reach the quorum. */
function requireGroup(min: bigint, statuses: readonly TriState[]): TriState {
  if (min === 0n) return "True";
  const trueCount = BigInt(statuses.filter((status) => status === "True").length);
  const unknownCount = BigInt(statuses.filter((status) => status === "Unknown").length);
  if (trueCount >= min) return "True";
  if (trueCount + unknownCount < min) return "False";
  return "Unknown";
}
