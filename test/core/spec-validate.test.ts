import { describe, expect, it } from "vitest";
import { SpecInvalidError, type SpecProblem } from "../../src/core/errors.js";
import { MAX_EVAL_DEPTH } from "../../src/core/logic/evaluate.js";
import { DEFAULT_SPEC_LIMITS, type SpecLimits } from "../../src/core/spec/limits.js";
import {
  type AdvanceTo,
  type ConditionSpec,
  type GateSpec,
  type PacketPayload,
  type PacketSpec,
  type Requirement,
  ScenarioSpec,
  type StageSpec,
} from "../../src/core/spec/schema.js";
import { findSpecProblems, validateSpec } from "../../src/core/spec/validate.js";
import { decode } from "../../src/core/wire/common.js";
import { readSharedJson } from "../support/shared.js";

const vectors = readSharedJson("spec/vectors/spec-hashes.json") as unknown as Array<{ name: string; spec: unknown }>;

function vectorSpec(name: string): ScenarioSpec {
  const vector = vectors.find((candidate) => candidate.name === name);
  if (vector === undefined) throw new Error(`missing vector ${name}`);
  return decode(ScenarioSpec, vector.spec, "spec");
}

/** A fresh copy of the "two-stage release gate" spec: stages review → ship, condition after_window. */
function releaseSpec(): ScenarioSpec {
  return vectorSpec("two-stage release gate");
}

const LEAF: Requirement = { Condition: "after_window" };

function condition(conditionId: string, providerId = "time", checkId = "after"): ConditionSpec {
  return {
    condition_id: conditionId,
    query: { provider_id: providerId, check_id: checkId },
    comparator: "equals",
    expected: true,
    policy_tags: [],
  };
}

function gate(gateId: string, requirement: Requirement = LEAF): GateSpec {
  return { gate_id: gateId, requirement };
}

function packet(packetId: string, payload: PacketPayload = { kind: "json", value: { ok: true } }): PacketSpec {
  return {
    packet_id: packetId,
    schema_id: "schema-v1",
    content_type: "application/json",
    visibility_labels: [],
    policy_tags: [],
    expiry: null,
    payload,
  };
}

function stage(stageId: string, parts: Partial<StageSpec> = {}): StageSpec {
  return {
    stage_id: stageId,
    entry_packets: [],
    gates: [],
    advance_to: { kind: "terminal" },
    timeout: null,
    on_timeout: "fail",
    ...parts,
  };
}

function spec(stages: StageSpec[], conditions: ConditionSpec[] = [condition("after_window")]): ScenarioSpec {
  return {
    scenario_id: "scenario",
    namespace_id: 2n,
    spec_version: "v1",
    stages,
    conditions,
    policies: [],
    schemas: [],
    default_tenant_id: null,
  };
}

function branch(rules: Array<[gateId: string, nextStageId: string]>, fallback: string | null = null): AdvanceTo {
  const branches = rules.map(([gateId, nextStageId]) => ({
    gate_id: gateId,
    outcome: "true" as const,
    next_stage_id: nextStageId,
  }));
  return { kind: "branch", branches, default: fallback };
}

function nestedNots(count: number): Requirement {
  let requirement: Requirement = LEAF;
  for (let i = 0; i < count; i++) requirement = { Not: requirement };
  return requirement;
}

function requireGroup(min: bigint, size: number): Requirement {
  return { RequireGroup: { min, reqs: Array.from({ length: size }, () => LEAF) } };
}

/** A spec with one stage holding one gate with `requirement`. */
function specWithRequirement(requirement: Requirement): ScenarioSpec {
  return spec([stage("only", { gates: [gate("g", requirement)] })]);
}

function codes(problems: readonly SpecProblem[]): string[] {
  return problems.map((problem) => problem.code);
}

function thrownBy(action: () => void): SpecInvalidError {
  try {
    action();
  } catch (error) {
    if (error instanceof SpecInvalidError) return error;
    throw error;
  }
  throw new Error("expected a SpecInvalidError");
}

describe("valid specs", () => {
  it("accepts the two-stage release gate", () => {
    const valid = releaseSpec();
    expect(findSpecProblems(valid)).toEqual([]);
    expect(() => validateSpec(valid)).not.toThrow();
  });

  it("accepts every spec_hash vector", () => {
    for (const vector of vectors) expect(findSpecProblems(vectorSpec(vector.name)), vector.name).toEqual([]);
  });

  it("keeps the reference's leniency: empty And/Or, unused conditions, cycles, self-targets, no branch default", () => {
    const lenient = spec(
      [
        stage("a", {
          gates: [
            gate("empty-and", { And: [] }),
            gate("empty-or", { Or: [] }),
            gate("empty-group", requireGroup(0n, 0)),
          ],
          advance_to: branch([["empty-and", "b"]]),
        }),
        stage("b", { gates: [gate("loop")], advance_to: { kind: "fixed", stage_id: "a" } }),
        stage("c", { advance_to: { kind: "fixed", stage_id: "c" } }),
      ],
      [condition("after_window"), condition("never_used")],
    );
    expect(findSpecProblems(lenient)).toEqual([]);
  });
});

describe("reference checks (engine §1.3), exact messages", () => {
  it("1: no stages", () => {
    const problems = findSpecProblems(spec([]));
    expect(problems).toEqual([
      { code: "no_stages", path: "stages", message: "scenario spec must define at least one stage" },
    ]);
  });

  it("2: duplicate stage ids, reported at the first stage that has a later duplicate, once each", () => {
    const problems = findSpecProblems(spec([stage("a"), stage("b"), stage("b"), stage("a"), stage("a")]));
    expect(problems).toEqual([
      { code: "duplicate_stage_id", path: "stages[0].stage_id", message: "duplicate stage identifier: a" },
      { code: "duplicate_stage_id", path: "stages[1].stage_id", message: "duplicate stage identifier: b" },
    ]);
  });

  it("3: duplicate gate ids across stages, reported at the first repeat, once each", () => {
    const stages = [
      stage("s1", { gates: [gate("g1"), gate("g2")] }),
      stage("s2", { gates: [gate("g2"), gate("g1"), gate("g2")] }),
    ];
    expect(findSpecProblems(spec(stages))).toEqual([
      { code: "duplicate_gate_id", path: "stages[1].gates[0].gate_id", message: "duplicate gate identifier: g2" },
      { code: "duplicate_gate_id", path: "stages[1].gates[1].gate_id", message: "duplicate gate identifier: g1" },
    ]);
  });

  it("4: duplicate packet ids across stages, reported at the first repeat", () => {
    const stages = [
      stage("s1", { entry_packets: [packet("p1"), packet("p2")] }),
      stage("s2", { entry_packets: [packet("p2"), packet("p1")] }),
    ];
    expect(findSpecProblems(spec(stages))).toEqual([
      {
        code: "duplicate_packet_id",
        path: "stages[1].entry_packets[0].packet_id",
        message: "duplicate packet identifier: p2",
      },
      {
        code: "duplicate_packet_id",
        path: "stages[1].entry_packets[1].packet_id",
        message: "duplicate packet identifier: p1",
      },
    ]);
  });

  it("5: duplicate condition ids, reported at the first occurrence", () => {
    const conditions = [condition("after_window"), condition("c2"), condition("c2"), condition("after_window")];
    expect(findSpecProblems(spec([stage("s")], conditions))).toEqual([
      {
        code: "duplicate_condition_id",
        path: "conditions[0].condition_id",
        message: "duplicate condition id: after_window",
      },
      { code: "duplicate_condition_id", path: "conditions[1].condition_id", message: "duplicate condition id: c2" },
    ]);
  });

  it("6: blank provider_id or check_id, per condition in order, provider first", () => {
    const conditions = [condition("after_window"), condition("both", " \t", ""), condition("check", "time", "\n")];
    expect(findSpecProblems(spec([stage("s")], conditions))).toEqual([
      {
        code: "empty_provider_id",
        path: "conditions[1].query.provider_id",
        message: "invalid evidence query for condition both: provider_id is empty",
      },
      {
        code: "empty_check_id",
        path: "conditions[1].query.check_id",
        message: "invalid evidence query for condition both: check_id is empty",
      },
      {
        code: "empty_check_id",
        path: "conditions[2].query.check_id",
        message: "invalid evidence query for condition check: check_id is empty",
      },
    ]);
  });

  it("6: trims as Rust's str::trim does (U+0085 is whitespace, U+FEFF is not)", () => {
    const conditions = [condition("nel", "\u0085\u3000"), condition("bom", "\ufeff")];
    expect(codes(findSpecProblems(spec([stage("s")], conditions)))).toEqual(["empty_provider_id"]);
  });

  it("7: undefined conditions, in walk order (stages, gates, depth-first left to right), once each", () => {
    const stages = [
      stage("s1", {
        gates: [gate("g1", { And: [LEAF, { Not: { Condition: "missing_b" } }, { Condition: "missing_a" }] })],
      }),
      stage("s2", { gates: [gate("g2", { Or: [{ Condition: "missing_a" }, { Condition: "missing_c" }] })] }),
    ];
    expect(findSpecProblems(spec(stages))).toEqual([
      {
        code: "undefined_condition",
        path: "stages[0].gates[0].requirement.And[1].Not",
        message: "gate references undefined condition: missing_b",
      },
      {
        code: "undefined_condition",
        path: "stages[0].gates[0].requirement.And[2]",
        message: "gate references undefined condition: missing_a",
      },
      {
        code: "undefined_condition",
        path: "stages[1].gates[0].requirement.Or[1]",
        message: "gate references undefined condition: missing_c",
      },
    ]);
  });

  it("8: unknown fixed, branch and default targets, in stage order, once each", () => {
    const stages = [
      stage("s1", {
        gates: [gate("g")],
        advance_to: branch(
          [
            ["g", "s2"],
            ["g", "x"],
          ],
          "y",
        ),
      }),
      stage("s2", { advance_to: { kind: "fixed", stage_id: "z" } }),
      stage("s3", { advance_to: { kind: "fixed", stage_id: "x" } }),
    ];
    expect(findSpecProblems(spec(stages))).toEqual([
      {
        code: "unknown_branch_target",
        path: "stages[0].advance_to.branches[1].next_stage_id",
        message: "branch target refers to unknown stage: x",
      },
      {
        code: "unknown_branch_target",
        path: "stages[0].advance_to.default",
        message: "branch target refers to unknown stage: y",
      },
      {
        code: "unknown_branch_target",
        path: "stages[1].advance_to.stage_id",
        message: "branch target refers to unknown stage: z",
      },
    ]);
  });
});

describe("problem ordering", () => {
  it("reports the reference's first failure first, then lists the others", () => {
    const stages = [stage("x", { gates: [gate("g", { Condition: "nope" })] }), stage("x")];
    const error = thrownBy(() => validateSpec(spec(stages)));
    expect(error.message.startsWith("invalid scenario spec: duplicate stage identifier: x")).toBe(true);
    expect(error.message).toBe(
      "invalid scenario spec: duplicate stage identifier: x; gate references undefined condition: nope",
    );
    expect(codes(error.problems)).toEqual(["duplicate_stage_id", "undefined_condition"]);
  });

  it("orders by reference check, not by location, and puts this project's checks last", () => {
    const stages = [
      stage("s1", {
        gates: [gate("g1", requireGroup(3n, 2)), gate("g2", { Condition: "missing" })],
        entry_packets: [packet("p"), packet("p")],
        advance_to: branch([["other-stage-gate", "nowhere"]]),
      }),
      stage("s2", { gates: [gate("g1"), gate("other-stage-gate")] }),
      stage("s1"),
    ];
    const conditions = [condition("after_window", "", " "), condition("after_window")];
    expect(codes(findSpecProblems(spec(stages, conditions)))).toEqual([
      "duplicate_stage_id",
      "duplicate_gate_id",
      "duplicate_packet_id",
      "duplicate_condition_id",
      "empty_provider_id",
      "empty_check_id",
      "undefined_condition",
      "unknown_branch_target",
      "require_group_min_exceeds_len",
      "branch_unknown_gate",
    ]);
  });

  it("reports no stages before anything else", () => {
    const problems = findSpecProblems(spec([], [condition("c", ""), condition("c")]));
    expect(codes(problems)).toEqual(["no_stages", "duplicate_condition_id", "empty_provider_id"]);
  });
});

describe("requirement structure (D5)", () => {
  it("uses the evaluator's depth limit", () => {
    expect(DEFAULT_SPEC_LIMITS.maxRequirementDepth).toBe(MAX_EVAL_DEPTH);
  });

  it("accepts 32 nested Not around a Condition and rejects 33", () => {
    expect(findSpecProblems(specWithRequirement(nestedNots(32)))).toEqual([]);
    const path = `stages[0].gates[0].requirement${".Not".repeat(33)}`;
    expect(findSpecProblems(specWithRequirement(nestedNots(33)))).toEqual([
      { code: "requirement_too_deep", path, message: `requirement node at ${path} has depth 33 (limit 32)` },
    ]);
  });

  it("reports depth once per gate and survives absurd depths without recursion", () => {
    const problems = findSpecProblems(specWithRequirement(nestedNots(100_000)));
    expect(codes(problems)).toEqual(["requirement_too_large", "requirement_too_deep"]);
  });

  it("counts depth through And, Or and RequireGroup", () => {
    let requirement: Requirement = LEAF;
    for (let i = 0; i < 33; i++) {
      const wrappers: Requirement[] = [
        { And: [LEAF, requirement] },
        { Or: [requirement] },
        { RequireGroup: { min: 1n, reqs: [requirement] } },
      ];
      requirement = wrappers[i % 3] as Requirement;
    }
    const problems = findSpecProblems(specWithRequirement(requirement));
    expect(codes(problems)).toEqual(["requirement_too_deep"]);
    expect(problems[0]?.path).toMatch(
      /^stages\[0\]\.gates\[0\]\.requirement\.RequireGroup\.reqs\[0\]\.Or\[0\]\.And\[1\]/,
    );
  });

  it("accepts RequireGroup min == len and rejects min == len + 1", () => {
    expect(findSpecProblems(specWithRequirement(requireGroup(3n, 3)))).toEqual([]);
    expect(findSpecProblems(specWithRequirement({ And: [LEAF, requireGroup(4n, 3)] }))).toEqual([
      {
        code: "require_group_min_exceeds_len",
        path: "stages[0].gates[0].requirement.And[1]",
        message:
          "requirement group at stages[0].gates[0].requirement.And[1] requires min 4 but has only 3 requirements",
      },
    ]);
  });

  it("rejects an empty RequireGroup with min 1", () => {
    expect(codes(findSpecProblems(specWithRequirement(requireGroup(1n, 0))))).toEqual([
      "require_group_min_exceeds_len",
    ]);
  });

  it("rejects RequireGroup min 0 with requirements, as always true", () => {
    const problems = findSpecProblems(specWithRequirement({ Not: requireGroup(0n, 2) }));
    const path = "stages[0].gates[0].requirement.Not";
    const message = `requirement group at ${path} has min 0, so it is always true whatever its 2 requirements`;
    expect(problems).toEqual([{ code: "require_group_min_zero", path, message }]);
  });

  it("reports every bad group in walk order", () => {
    const requirement: Requirement = {
      Or: [requireGroup(2n, 1), { RequireGroup: { min: 0n, reqs: [requireGroup(5n, 1)] } }],
    };
    expect(findSpecProblems(specWithRequirement(requirement)).map((problem) => problem.path)).toEqual([
      "stages[0].gates[0].requirement.Or[0]",
      "stages[0].gates[0].requirement.Or[1]",
      "stages[0].gates[0].requirement.Or[1].RequireGroup.reqs[0]",
    ]);
  });
});

describe("branch rules (D5)", () => {
  it("accepts a rule naming a gate of its own stage", () => {
    const stages = [stage("a", { gates: [gate("ga")], advance_to: branch([["ga", "b"]]) }), stage("b")];
    expect(findSpecProblems(spec(stages))).toEqual([]);
  });

  it("rejects a rule naming a gate of another stage, or no gate at all", () => {
    const stages = [
      stage("a", {
        gates: [gate("ga")],
        advance_to: branch(
          [
            ["ga", "b"],
            ["gb", "b"],
            ["ghost", "a"],
          ],
          "b",
        ),
      }),
      stage("b", { gates: [gate("gb")] }),
    ];
    expect(findSpecProblems(spec(stages))).toEqual([
      {
        code: "branch_unknown_gate",
        path: "stages[0].advance_to.branches[1].gate_id",
        message: "branch rule at stages[0].advance_to.branches[1].gate_id names gate gb, not a gate of stage a",
      },
      {
        code: "branch_unknown_gate",
        path: "stages[0].advance_to.branches[2].gate_id",
        message: "branch rule at stages[0].advance_to.branches[2].gate_id names gate ghost, not a gate of stage a",
      },
    ]);
  });
});

interface LimitCase {
  readonly name: string;
  readonly limit: number;
  readonly code: string;
  readonly path: string;
  /** A valid spec with exactly `size` of the limited thing. */
  readonly build: (size: number) => ScenarioSpec;
}

const ids = (count: number, prefix: string): string[] => Array.from({ length: count }, (_, i) => `${prefix}${i}`);
const limits = DEFAULT_SPEC_LIMITS;

function withReleaseSpec(change: (target: ScenarioSpec) => void): ScenarioSpec {
  const target = releaseSpec();
  change(target);
  return target;
}

function firstPacket(target: ScenarioSpec): PacketSpec {
  const found = target.stages[0]?.entry_packets[0];
  if (found === undefined) throw new Error("release spec has no packet");
  return found;
}

/** An identifier of exactly `size` UTF-8 bytes, mixing 2-byte characters in. */
function idOfBytes(size: number): string {
  return "é".repeat(Math.floor(size / 2)) + "a".repeat(size % 2);
}

const LIMIT_CASES: LimitCase[] = [
  {
    name: "stages",
    limit: limits.maxStages,
    code: "too_many_stages",
    path: "stages",
    build: (size) => spec(ids(size, "s").map((id) => stage(id))),
  },
  {
    name: "gates per stage",
    limit: limits.maxGatesPerStage,
    code: "too_many_gates",
    path: "stages[0].gates",
    build: (size) => spec([stage("s", { gates: ids(size, "g").map((id) => gate(id)) })]),
  },
  {
    name: "entry packets per stage",
    limit: limits.maxEntryPacketsPerStage,
    code: "too_many_entry_packets",
    path: "stages[0].entry_packets",
    build: (size) => spec([stage("s", { entry_packets: ids(size, "p").map((id) => packet(id)) })]),
  },
  {
    name: "branch rules per stage",
    limit: limits.maxBranchRulesPerStage,
    code: "too_many_branch_rules",
    path: "stages[0].advance_to.branches",
    build: (size) =>
      spec([stage("s", { gates: [gate("g")], advance_to: branch(Array.from({ length: size }, () => ["g", "s"])) })]),
  },
  {
    name: "conditions",
    limit: limits.maxConditions,
    code: "too_many_conditions",
    path: "conditions",
    build: (size) =>
      spec(
        [stage("s")],
        ids(size, "c").map((id) => condition(id)),
      ),
  },
  {
    name: "policies",
    limit: limits.maxPolicies,
    code: "too_many_policies",
    path: "policies",
    build: (size) =>
      withReleaseSpec((target) => {
        target.policies = ids(size, "p").map((id) => ({ policy_id: id, description: null }));
      }),
  },
  {
    name: "schemas",
    limit: limits.maxSchemas,
    code: "too_many_schemas",
    path: "schemas",
    build: (size) =>
      withReleaseSpec((target) => {
        target.schemas = ids(size, "s").map((id) => ({ schema_id: id, version: null, uri: null }));
      }),
  },
  {
    name: "requirement nodes per gate",
    limit: limits.maxRequirementNodes,
    code: "requirement_too_large",
    path: "stages[0].gates[0].requirement",
    build: (size) => specWithRequirement({ And: Array.from({ length: size - 1 }, () => LEAF) }),
  },
  {
    name: "policy tags of a condition",
    limit: limits.maxPolicyTags,
    code: "too_many_policy_tags",
    path: "conditions[0].policy_tags",
    build: (size) => spec([stage("s")], [{ ...condition("after_window"), policy_tags: ids(size, "t") }]),
  },
  {
    name: "policy tags of a timeout",
    limit: limits.maxPolicyTags,
    code: "too_many_policy_tags",
    path: "stages[0].timeout.policy_tags",
    build: (size) => spec([stage("s", { timeout: { timeout_ms: 5n, policy_tags: ids(size, "t") } })]),
  },
  {
    name: "policy tags of a packet",
    limit: limits.maxPolicyTags,
    code: "too_many_policy_tags",
    path: "stages[0].entry_packets[0].policy_tags",
    build: (size) =>
      withReleaseSpec((target) => {
        firstPacket(target).policy_tags = ids(size, "t");
      }),
  },
  {
    name: "visibility labels of a packet",
    limit: limits.maxVisibilityLabels,
    code: "too_many_visibility_labels",
    path: "stages[0].entry_packets[0].visibility_labels",
    build: (size) =>
      withReleaseSpec((target) => {
        firstPacket(target).visibility_labels = ids(size, "l");
      }),
  },
  {
    name: "JSON payload canonical bytes",
    limit: limits.maxPacketPayloadBytes,
    code: "payload_too_large",
    path: "stages[0].entry_packets[0].payload",
    // A string of n characters is n + 2 canonical bytes (its quotes).
    build: (size) =>
      withReleaseSpec((target) => {
        firstPacket(target).payload = { kind: "json", value: "x".repeat(size - 2) };
      }),
  },
  {
    name: "bytes payload length",
    limit: limits.maxPacketPayloadBytes,
    code: "payload_too_large",
    path: "stages[0].entry_packets[0].payload",
    build: (size) =>
      withReleaseSpec((target) => {
        firstPacket(target).payload = { kind: "bytes", bytes: new Uint8Array(size) };
      }),
  },
];

const ID_FIELDS: Array<{ path: string; set: (target: ScenarioSpec, id: string) => void }> = [
  {
    path: "scenario_id",
    set: (target, id) => {
      target.scenario_id = id;
    },
  },
  {
    path: "spec_version",
    set: (target, id) => {
      target.spec_version = id;
    },
  },
  {
    path: "stages[1].stage_id",
    set: (target, id) => {
      const ship = target.stages[1];
      if (ship !== undefined) ship.stage_id = id;
    },
  },
  {
    path: "stages[0].gates[0].gate_id",
    set: (target, id) => {
      const found = target.stages[0]?.gates[0];
      if (found !== undefined) found.gate_id = id;
    },
  },
  {
    path: "stages[0].entry_packets[0].packet_id",
    set: (target, id) => {
      firstPacket(target).packet_id = id;
    },
  },
  {
    path: "stages[0].entry_packets[0].schema_id",
    set: (target, id) => {
      firstPacket(target).schema_id = id;
    },
  },
  {
    path: "conditions[1].condition_id",
    set: (target, id) => {
      target.conditions.push(condition(id));
    },
  },
  {
    path: "conditions[0].query.provider_id",
    set: (target, id) => {
      const found = target.conditions[0];
      if (found !== undefined) found.query.provider_id = id;
    },
  },
  {
    path: "conditions[0].query.check_id",
    set: (target, id) => {
      const found = target.conditions[0];
      if (found !== undefined) found.query.check_id = id;
    },
  },
  {
    path: "policies[0].policy_id",
    set: (target, id) => {
      target.policies.push({ policy_id: id, description: null });
    },
  },
  {
    path: "schemas[0].schema_id",
    set: (target, id) => {
      target.schemas.push({ schema_id: id, version: null, uri: null });
    },
  },
];

describe("count and size limits (D5)", () => {
  for (const limitCase of LIMIT_CASES) {
    it(`${limitCase.name}: ${limitCase.limit} passes, ${limitCase.limit + 1} is rejected`, () => {
      expect(findSpecProblems(limitCase.build(limitCase.limit))).toEqual([]);
      const problems = findSpecProblems(limitCase.build(limitCase.limit + 1));
      expect(problems.map(({ code, path }) => ({ code, path }))).toEqual([
        { code: limitCase.code, path: limitCase.path },
      ]);
      expect(problems[0]?.message).toContain(`${limitCase.limit + 1}`);
      expect(problems[0]?.message).toContain(`(limit ${limitCase.limit})`);
    });
  }

  for (const field of ID_FIELDS) {
    it(`identifier ${field.path}: ${limits.maxIdBytes} UTF-8 bytes pass, ${limits.maxIdBytes + 1} are rejected`, () => {
      const atLimit = withReleaseSpec((target) => field.set(target, idOfBytes(limits.maxIdBytes)));
      expect(findSpecProblems(atLimit)).toEqual([]);
      const over = withReleaseSpec((target) => field.set(target, idOfBytes(limits.maxIdBytes + 1)));
      expect(findSpecProblems(over)).toEqual([
        {
          code: "id_too_long",
          path: field.path,
          message: `identifier at ${field.path} is too long: 257 UTF-8 bytes (limit 256)`,
        },
      ]);
    });
  }

  it("limits the length of policy tags and visibility labels like identifiers", () => {
    const at = withReleaseSpec((target) => {
      firstPacket(target).policy_tags = [idOfBytes(256)];
      firstPacket(target).visibility_labels = [idOfBytes(256)];
    });
    expect(findSpecProblems(at)).toEqual([]);
    const over = withReleaseSpec((target) => {
      firstPacket(target).policy_tags = ["ok", idOfBytes(257)];
      firstPacket(target).visibility_labels = [idOfBytes(257)];
    });
    expect(findSpecProblems(over).map(({ code, path }) => ({ code, path }))).toEqual([
      { code: "visibility_label_too_long", path: "stages[0].entry_packets[0].visibility_labels[0]" },
      { code: "policy_tag_too_long", path: "stages[0].entry_packets[0].policy_tags[1]" },
    ]);
  });

  it("reports a JSON payload that cannot be canonicalized", () => {
    const target = withReleaseSpec((target) => {
      firstPacket(target).payload = { kind: "json", value: { bad: Number.NaN } };
    });
    expect(codes(findSpecProblems(target))).toEqual(["payload_not_canonical"]);
  });

  it("does not size external payloads", () => {
    const target = withReleaseSpec((target) => {
      firstPacket(target).payload = {
        kind: "external",
        content_ref: { uri: "s3://bucket/key", content_hash: { algorithm: "sha256", value: "00" }, encryption: null },
      };
    });
    expect(findSpecProblems(target)).toEqual([]);
  });

  it("honours caller-supplied limits", () => {
    const tight: SpecLimits = { ...DEFAULT_SPEC_LIMITS, maxStages: 1, maxRequirementDepth: 0 };
    expect(findSpecProblems(releaseSpec(), tight).map(({ code, path }) => ({ code, path }))).toEqual([
      { code: "too_many_stages", path: "stages" },
      { code: "requirement_too_deep", path: "stages[0].gates[0].requirement.And[0]" },
    ]);
    const shortIds: SpecLimits = { ...DEFAULT_SPEC_LIMITS, maxIdBytes: 12 };
    expect(findSpecProblems(releaseSpec(), shortIds)).toEqual([]);
    const shorterIds: SpecLimits = { ...DEFAULT_SPEC_LIMITS, maxIdBytes: 11 };
    expect(findSpecProblems(releaseSpec(), shorterIds).map(({ path }) => path)).toEqual([
      "scenario_id",
      "conditions[0].condition_id",
    ]);
  });
});

describe("validateSpec", () => {
  it("throws a SpecInvalidError listing every problem", () => {
    const invalid = spec([
      stage("a", { gates: [gate("g", requireGroup(2n, 1))], advance_to: { kind: "fixed", stage_id: "zzz" } }),
    ]);
    const error = thrownBy(() => validateSpec(invalid));
    expect(error).toBeInstanceOf(SpecInvalidError);
    expect(error.kind).toBe("control_plane");
    expect(error.code).toBe("spec_invalid");
    expect(error.problems).toEqual(findSpecProblems(invalid));
    expect(codes(error.problems)).toEqual(["unknown_branch_target", "require_group_min_exceeds_len"]);
    expect(error.details).toEqual({ problems: error.problems.map((problem) => ({ ...problem })) });
    expect(error.message).toBe(
      "invalid scenario spec: branch target refers to unknown stage: zzz; " +
        "requirement group at stages[0].gates[0].requirement requires min 2 but has only 1 requirements",
    );
  });

  it("returns quietly for a valid spec", () => {
    expect(validateSpec(releaseSpec())).toBeUndefined();
  });
});
