import { describe, expect, it } from "vitest";
import { evaluateRequirement, MAX_EVAL_DEPTH } from "../../src/core/logic/evaluate.js";
import { and, not, or } from "../../src/core/logic/tristate.js";
import type { Requirement } from "../../src/core/spec/schema.js";
import type { TriState } from "../../src/core/wire/common.js";

const T: TriState = "True";
const F: TriState = "False";
const U: TriState = "Unknown";

/** Engine §2.3 tables, one row per left operand, columns T, F, U. */
const AND_TABLE: Array<[TriState, TriState, TriState]> = [
  [T, T, T],
  [T, F, F],
  [T, U, U],
  [F, T, F],
  [F, F, F],
  [F, U, F],
  [U, T, U],
  [U, F, F],
  [U, U, U],
];
const OR_TABLE: Array<[TriState, TriState, TriState]> = [
  [T, T, T],
  [T, F, T],
  [T, U, T],
  [F, T, T],
  [F, F, F],
  [F, U, U],
  [U, T, T],
  [U, F, U],
  [U, U, U],
];

const cond = (id: string): Requirement => ({ Condition: id });
const group = (min: bigint, reqs: Requirement[]): Requirement => ({ RequireGroup: { min, reqs } });

/** A condition id per status, so a tree can be written with literal statuses. */
const leaf = (status: TriState): Requirement => cond(status);
const byName = (id: string): TriState => {
  if (id === T || id === F || id === U) return id;
  throw new Error(`no status for ${id}`);
};
const statusOf = (requirement: Requirement): TriState => evaluateRequirement(requirement, byName).status;

function nestedNots(count: number, inner: Requirement): Requirement {
  let node = inner;
  for (let i = 0; i < count; i += 1) node = { Not: node };
  return node;
}

describe("Kleene connectives", () => {
  it.each(AND_TABLE)("and(%s, %s) = %s", (a, b, expected) => {
    expect(and(a, b)).toBe(expected);
  });

  it.each(OR_TABLE)("or(%s, %s) = %s", (a, b, expected) => {
    expect(or(a, b)).toBe(expected);
  });

  it.each([
    [T, F],
    [F, T],
    [U, U],
  ] as Array<[TriState, TriState]>)("not(%s) = %s", (a, expected) => {
    expect(not(a)).toBe(expected);
  });
});

describe("evaluateRequirement: n-ary nodes", () => {
  it("a Condition leaf takes the status given for its id", () => {
    for (const status of [T, F, U]) expect(statusOf(leaf(status))).toBe(status);
  });

  it("Not negates its child", () => {
    expect(statusOf({ Not: leaf(T) })).toBe(F);
    expect(statusOf({ Not: leaf(F) })).toBe(T);
    expect(statusOf({ Not: leaf(U) })).toBe(U);
  });

  it("And([]) is True and Or([]) is False", () => {
    expect(statusOf({ And: [] })).toBe(T);
    expect(statusOf({ Or: [] })).toBe(F);
  });

  it("And is False if any child is False, else True if all are True, else Unknown", () => {
    expect(statusOf({ And: [leaf(T), leaf(T), leaf(T)] })).toBe(T);
    expect(statusOf({ And: [leaf(T), leaf(U), leaf(F)] })).toBe(F);
    expect(statusOf({ And: [leaf(U), leaf(F)] })).toBe(F);
    expect(statusOf({ And: [leaf(T), leaf(U), leaf(T)] })).toBe(U);
    expect(statusOf({ And: [leaf(F)] })).toBe(F);
  });

  it("Or is True if any child is True, else False if all are False, else Unknown", () => {
    expect(statusOf({ Or: [leaf(F), leaf(F), leaf(F)] })).toBe(F);
    expect(statusOf({ Or: [leaf(F), leaf(U), leaf(T)] })).toBe(T);
    expect(statusOf({ Or: [leaf(U), leaf(T)] })).toBe(T);
    expect(statusOf({ Or: [leaf(F), leaf(U), leaf(F)] })).toBe(U);
    expect(statusOf({ Or: [leaf(T)] })).toBe(T);
  });

  it("nested nodes combine", () => {
    expect(statusOf({ And: [{ Or: [leaf(F), leaf(T)] }, { Not: leaf(F) }] })).toBe(T);
    expect(statusOf({ Or: [{ And: [leaf(T), leaf(U)] }, { Not: leaf(T) }] })).toBe(U);
  });
});

describe("evaluateRequirement: RequireGroup", () => {
  it("min 0 is True, even with no children or only False children", () => {
    expect(statusOf(group(0n, []))).toBe(T);
    expect(statusOf(group(0n, [leaf(F), leaf(F)]))).toBe(T);
    expect(statusOf(group(0n, [leaf(U)]))).toBe(T);
  });

  it("is True once the True children reach min", () => {
    expect(statusOf(group(2n, [leaf(T), leaf(F), leaf(T)]))).toBe(T);
    expect(statusOf(group(2n, [leaf(T), leaf(U), leaf(T), leaf(T)]))).toBe(T);
    expect(statusOf(group(1n, [leaf(F), leaf(U), leaf(T)]))).toBe(T);
  });

  it("is False when True and Unknown children together cannot reach min", () => {
    expect(statusOf(group(2n, [leaf(T), leaf(F), leaf(F)]))).toBe(F);
    expect(statusOf(group(3n, [leaf(T), leaf(U), leaf(F)]))).toBe(F);
    expect(statusOf(group(1n, [leaf(F)]))).toBe(F);
  });

  it("is always False when min exceeds the number of children", () => {
    expect(statusOf(group(1n, []))).toBe(F);
    expect(statusOf(group(3n, [leaf(T), leaf(T)]))).toBe(F);
    expect(statusOf(group(4n, [leaf(U), leaf(U), leaf(U)]))).toBe(F);
    expect(statusOf(group(255n, [leaf(T)]))).toBe(F);
  });

  it("is Unknown exactly while s < min <= s + u", () => {
    // s = 1, u = 2: min 2 and 3 are in the window, min 1 is met and min 4 is out of reach.
    const children = [leaf(T), leaf(U), leaf(U), leaf(F)];
    expect(statusOf(group(1n, children))).toBe(T);
    expect(statusOf(group(2n, children))).toBe(U);
    expect(statusOf(group(3n, children))).toBe(U);
    expect(statusOf(group(4n, children))).toBe(F);
  });
});

describe("evaluateRequirement: trace", () => {
  const statuses: Record<string, TriState> = { a: T, b: F, c: U };
  const lookup = (id: string): TriState => statuses[id] ?? U;

  it("lists every leaf visit depth-first, left to right, duplicates kept", () => {
    const requirement: Requirement = {
      And: [cond("a"), { Or: [cond("b"), { Not: cond("c") }] }, cond("a"), group(1n, [cond("b"), cond("c")])],
    };
    expect(evaluateRequirement(requirement, lookup).trace).toEqual([
      { condition_id: "a", status: T },
      { condition_id: "b", status: F },
      { condition_id: "c", status: U },
      { condition_id: "a", status: T },
      { condition_id: "b", status: F },
      { condition_id: "c", status: U },
    ]);
  });

  it("does not short-circuit Or after a True child", () => {
    const result = evaluateRequirement({ Or: [cond("a"), cond("c")] }, lookup);
    expect(result.status).toBe(T);
    expect(result.trace.map((entry) => entry.condition_id)).toEqual(["a", "c"]);
  });

  it("does not short-circuit And after a False child", () => {
    const result = evaluateRequirement({ And: [cond("b"), cond("a")] }, lookup);
    expect(result.status).toBe(F);
    expect(result.trace.map((entry) => entry.condition_id)).toEqual(["b", "a"]);
  });

  it("does not short-circuit RequireGroup once the quorum is met", () => {
    const result = evaluateRequirement(group(1n, [cond("a"), cond("b"), cond("c")]), lookup);
    expect(result.status).toBe(T);
    expect(result.trace.map((entry) => entry.condition_id)).toEqual(["a", "b", "c"]);
  });

  it("asks statusOf once per leaf visit", () => {
    const asked: string[] = [];
    evaluateRequirement({ Or: [cond("a"), cond("a"), group(0n, [cond("b")])] }, (id) => {
      asked.push(id);
      return lookup(id);
    });
    expect(asked).toEqual(["a", "a", "b"]);
  });

  it("has an empty trace when there are no leaves", () => {
    expect(evaluateRequirement({ And: [{ Or: [] }, group(0n, [])] }, lookup)).toEqual({ status: F, trace: [] });
  });
});

describe("evaluateRequirement: depth guard", () => {
  it("is 32", () => {
    expect(MAX_EVAL_DEPTH).toBe(32);
  });

  it("accepts a leaf at depth 32 (32 nested Not)", () => {
    expect(evaluateRequirement(nestedNots(32, leaf(T)), byName)).toEqual({
      status: T,
      trace: [{ condition_id: T, status: T }],
    });
  });

  it("gives Unknown for a leaf at depth 33 (33 nested Not), without tracing it", () => {
    expect(evaluateRequirement(nestedNots(33, leaf(T)), byName)).toEqual({ status: U, trace: [] });
  });

  it("counts every node kind towards the depth", () => {
    let node: Requirement = leaf(T);
    for (let depth = 0; depth < 33; depth += 1) {
      node = [{ And: [node] }, { Or: [node] }, group(1n, [node])][depth % 3] as Requirement;
    }
    expect(evaluateRequirement(node, byName).status).toBe(U);
  });

  it("aborts the whole evaluation but keeps the trace recorded before the abort", () => {
    // The And would be False because of its first child, but the abort makes it Unknown.
    const requirement: Requirement = { And: [leaf(F), nestedNots(32, leaf(T)), leaf(U)] };
    expect(evaluateRequirement(requirement, byName)).toEqual({
      status: U,
      trace: [{ condition_id: F, status: F }],
    });
  });

  it("handles trees far deeper than the guard without overflowing the stack", () => {
    expect(evaluateRequirement(nestedNots(200_000, leaf(T)), byName)).toEqual({ status: U, trace: [] });
  });
});
