import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { evaluateRequirement } from "../../src/core/logic/evaluate.js";
import { and, not, or } from "../../src/core/logic/tristate.js";
import type { Requirement } from "../../src/core/spec/schema.js";
import type { TriState } from "../../src/core/wire/common.js";

const CONDITION_IDS = ["a", "b", "c", "d"] as const;
type ConditionId = (typeof CONDITION_IDS)[number];
type Statuses = Record<ConditionId, TriState>;

const triState = fc.constantFrom<TriState>("True", "False", "Unknown");

/** Requirement trees at most 6 levels deep over the condition ids a..d. */
const requirement: fc.Arbitrary<Requirement> = fc.letrec<{ node: Requirement }>((tie) => ({
  node: fc.oneof(
    { maxDepth: 6, depthIdentifier: "requirement" },
    fc.constantFrom(...CONDITION_IDS).map((id): Requirement => ({ Condition: id })),
    tie("node").map((child): Requirement => ({ Not: child })),
    fc.array(tie("node"), { maxLength: 4 }).map((children): Requirement => ({ And: children })),
    fc.array(tie("node"), { maxLength: 4 }).map((children): Requirement => ({ Or: children })),
    fc
      .record({ min: fc.bigInt({ min: 0n, max: 5n }), reqs: fc.array(tie("node"), { maxLength: 4 }) })
      .map((group): Requirement => ({ RequireGroup: group })),
  ),
})).node;

const statuses: fc.Arbitrary<Statuses> = fc.record({ a: triState, b: triState, c: triState, d: triState });

function lookup(values: Statuses): (id: string) => TriState {
  return (id) => values[id as ConditionId];
}

/*
 * Reference semantics written independently of the implementation: False, Unknown and True as 0, 1/2 and 1,
 * And as the minimum, Or as the maximum, Not as 1 - x; a quorum counts True children and Unknown children.
 */
const TO_NUMBER: Record<TriState, number> = { False: 0, Unknown: 0.5, True: 1 };
const FROM_NUMBER = (value: number): TriState => (value === 0 ? "False" : value === 1 ? "True" : "Unknown");

function referenceValue(node: Requirement, values: Statuses): number {
  if ("Condition" in node) return TO_NUMBER[values[node.Condition as ConditionId]];
  if ("Not" in node) return 1 - referenceValue(node.Not, values);
  if ("And" in node) return Math.min(1, ...node.And.map((child) => referenceValue(child, values)));
  if ("Or" in node) return Math.max(0, ...node.Or.map((child) => referenceValue(child, values)));
  const { min, reqs } = node.RequireGroup;
  const children = reqs.map((child) => referenceValue(child, values));
  const certain = children.filter((value) => value === 1).length;
  const possible = children.filter((value) => value > 0).length;
  if (Number(min) <= certain) return 1;
  return Number(min) <= possible ? 0.5 : 0;
}

function countLeaves(node: Requirement): number {
  if ("Condition" in node) return 1;
  if ("Not" in node) return countLeaves(node.Not);
  const children = "And" in node ? node.And : "Or" in node ? node.Or : node.RequireGroup.reqs;
  return children.reduce((sum, child) => sum + countLeaves(child), 0);
}

describe("Kleene laws", () => {
  it("and and or are commutative", () => {
    fc.assert(
      fc.property(triState, triState, (a, b) => {
        expect(and(a, b)).toBe(and(b, a));
        expect(or(a, b)).toBe(or(b, a));
      }),
    );
  });

  it("and and or are associative", () => {
    fc.assert(
      fc.property(triState, triState, triState, (a, b, c) => {
        expect(and(and(a, b), c)).toBe(and(a, and(b, c)));
        expect(or(or(a, b), c)).toBe(or(a, or(b, c)));
      }),
    );
  });

  it("De Morgan's laws hold", () => {
    fc.assert(
      fc.property(triState, triState, (a, b) => {
        expect(not(and(a, b))).toBe(or(not(a), not(b)));
        expect(not(or(a, b))).toBe(and(not(a), not(b)));
      }),
    );
  });

  it("double negation is the identity", () => {
    fc.assert(
      fc.property(triState, (a) => {
        expect(not(not(a))).toBe(a);
      }),
    );
  });

  it("absorption holds", () => {
    fc.assert(
      fc.property(triState, triState, (a, b) => {
        expect(and(a, or(a, b))).toBe(a);
        expect(or(a, and(a, b))).toBe(a);
      }),
    );
  });

  it("True is the identity of and, False the identity of or", () => {
    fc.assert(
      fc.property(triState, (a) => {
        expect(and(a, "True")).toBe(a);
        expect(or(a, "False")).toBe(a);
      }),
    );
  });

  it("False annihilates and, True annihilates or", () => {
    fc.assert(
      fc.property(triState, (a) => {
        expect(and(a, "False")).toBe("False");
        expect(or(a, "True")).toBe("True");
      }),
    );
  });
});

describe("evaluateRequirement on random trees", () => {
  it("agrees with the reference semantics", () => {
    fc.assert(
      fc.property(requirement, statuses, (tree, values) => {
        const expected = FROM_NUMBER(referenceValue(tree, values));
        expect(evaluateRequirement(tree, lookup(values)).status).toBe(expected);
      }),
      { numRuns: 500 },
    );
  });

  it("traces every Condition leaf once, with the status it was given", () => {
    fc.assert(
      fc.property(requirement, statuses, (tree, values) => {
        const { trace } = evaluateRequirement(tree, lookup(values));
        expect(trace).toHaveLength(countLeaves(tree));
        for (const entry of trace) expect(entry.status).toBe(values[entry.condition_id as ConditionId]);
      }),
      { numRuns: 500 },
    );
  });

  it("never changes a True or False result when an Unknown condition becomes True or False", () => {
    fc.assert(
      fc.property(
        requirement,
        statuses,
        fc.constantFrom(...CONDITION_IDS),
        fc.constantFrom<TriState>("True", "False"),
        (tree, values, id, refined) => {
          fc.pre(values[id] === "Unknown");
          const before = evaluateRequirement(tree, lookup(values)).status;
          fc.pre(before !== "Unknown");
          const after = evaluateRequirement(tree, lookup({ ...values, [id]: refined })).status;
          expect(after).toBe(before);
        },
      ),
      { numRuns: 500 },
    );
  });
});
