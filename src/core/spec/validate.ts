import { canonicalJson } from "../../json/write.js";
import { HashError, SpecInvalidError, type SpecProblem } from "../errors.js";
import { DEFAULT_SPEC_LIMITS, type SpecLimits } from "./limits.js";
import type { PacketSpec, Requirement, ScenarioSpec, StageSpec } from "./schema.js";

/*
 * Definition-time validation of a scenario spec (engine §1.3 plus README §5 D5).
 *
 * Every problem is collected. The reference's checks (engine §1.3) run first, in their order and with their exact
 * texts, so the first problem is always the one the reference would fail with; this project's tightening follows.
 * Each check lists its problems in the order the reference would meet them: a stage or condition id is reported at
 * its first occurrence (the reference scans for a later duplicate), a gate or packet id at its first repeat (the
 * reference scans for an earlier one). Each duplicated, undefined or unknown id is reported once.
 *
 * Deliberately still accepted, for compatibility with specs the reference accepts:
 * - empty `And` (evaluates to True) and empty `Or` (evaluates to False), and `RequireGroup` with min 0 and no reqs;
 * - conditions no gate references (capability checks still apply to them elsewhere);
 * - cycles in the stage graph, a `fixed` target naming its own stage, branches without a `default`.
 * Lengths are checked where an id is defined: a reference (condition leaf, branch target, branch gate) either
 * equals a checked definition or is already reported as undefined.
 */

export function findSpecProblems(spec: ScenarioSpec, limits: SpecLimits = DEFAULT_SPEC_LIMITS): SpecProblem[] {
  const trees = spec.stages.map((stage, stageIndex) =>
    stage.gates.map((gate, gateIndex) =>
      scanRequirement(gate.requirement, `stages[${stageIndex}].gates[${gateIndex}].requirement`, limits),
    ),
  );
  return [...findReferenceProblems(spec, trees), ...findTighteningProblems(spec, trees, limits)];
}

/** Throws a `SpecInvalidError` listing every problem when the spec is not valid. */
export function validateSpec(spec: ScenarioSpec, limits: SpecLimits = DEFAULT_SPEC_LIMITS): void {
  const problems = findSpecProblems(spec, limits);
  if (problems.length > 0) throw new SpecInvalidError(problems);
}

function problem(code: string, path: string, message: string): SpecProblem {
  return { code, path, message };
}

// ---------------------------------------------------------------------------------------------------------------
// Requirement trees: one iterative walk per gate (no recursion, so even absurd depths cannot overflow the stack).

interface TreeNode {
  readonly requirement: Requirement;
  readonly depth: number;
  readonly parent: TreeNode | undefined;
  /** Path of the root, or the suffix this node adds to its parent's path. */
  readonly segment: string;
}

interface RequirementScan {
  readonly rootPath: string;
  /** Condition leaves in evaluation order (depth-first, left to right). */
  readonly leaves: ReadonlyArray<{ readonly conditionId: string; readonly node: TreeNode }>;
  readonly nodeCount: number;
  /** The first node (in walk order) deeper than the depth limit. */
  readonly tooDeep: TreeNode | undefined;
  /** `RequireGroup` nodes in walk order. */
  readonly groups: ReadonlyArray<{ readonly node: TreeNode; readonly min: bigint; readonly size: number }>;
}

function scanRequirement(root: Requirement, rootPath: string, limits: SpecLimits): RequirementScan {
  const leaves: Array<{ conditionId: string; node: TreeNode }> = [];
  const groups: Array<{ node: TreeNode; min: bigint; size: number }> = [];
  let nodeCount = 0;
  let tooDeep: TreeNode | undefined;
  const pending: TreeNode[] = [{ requirement: root, depth: 0, parent: undefined, segment: rootPath }];
  for (let node = pending.pop(); node !== undefined; node = pending.pop()) {
    nodeCount++;
    if (tooDeep === undefined && node.depth > limits.maxRequirementDepth) tooDeep = node;
    const requirement = node.requirement;
    if ("Condition" in requirement) leaves.push({ conditionId: requirement.Condition, node });
    if ("RequireGroup" in requirement) {
      groups.push({ node, min: requirement.RequireGroup.min, size: requirement.RequireGroup.reqs.length });
    }
    const children = childrenOf(node);
    for (let index = children.length - 1; index >= 0; index--) pending.push(children[index] as TreeNode);
  }
  return { rootPath, leaves, nodeCount, tooDeep, groups };
}

function childrenOf(node: TreeNode): TreeNode[] {
  const requirement = node.requirement;
  const child = (item: Requirement, segment: string): TreeNode => ({
    requirement: item,
    depth: node.depth + 1,
    parent: node,
    segment,
  });
  if ("Not" in requirement) return [child(requirement.Not, ".Not")];
  if ("And" in requirement) return requirement.And.map((item, index) => child(item, `.And[${index}]`));
  if ("Or" in requirement) return requirement.Or.map((item, index) => child(item, `.Or[${index}]`));
  if ("RequireGroup" in requirement) {
    return requirement.RequireGroup.reqs.map((item, index) => child(item, `.RequireGroup.reqs[${index}]`));
  }
  return [];
}

function pathOf(node: TreeNode): string {
  const segments: string[] = [];
  for (let current: TreeNode | undefined = node; current !== undefined; current = current.parent) {
    segments.push(current.segment);
  }
  return segments.reverse().join("");
}

// ---------------------------------------------------------------------------------------------------------------
// The reference's checks (engine §1.3), in its order and with its texts.

/** Requirement scans of every gate, indexed by stage then gate. */
type StageTrees = ReadonlyArray<readonly RequirementScan[]>;

function findReferenceProblems(spec: ScenarioSpec, trees: StageTrees): SpecProblem[] {
  return [
    ...(spec.stages.length === 0
      ? [problem("no_stages", "stages", "scenario spec must define at least one stage")]
      : []),
    ...duplicateStageIds(spec),
    ...duplicateGateIds(spec),
    ...duplicatePacketIds(spec),
    ...duplicateConditionIds(spec),
    ...malformedQueries(spec),
    ...undefinedConditions(spec, trees),
    ...unknownBranchTargets(spec),
  ];
}

interface Located {
  readonly id: string;
  readonly path: string;
}

/** Ids that occur again later, each at its first occurrence, in order of first occurrence. */
function firstOccurrencesOfDuplicates(items: readonly Located[]): Located[] {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(item.id, (counts.get(item.id) ?? 0) + 1);
  const reported = new Set<string>();
  return items.filter((item) => {
    if ((counts.get(item.id) ?? 0) < 2 || reported.has(item.id)) return false;
    reported.add(item.id);
    return true;
  });
}

/** Ids that occur earlier too, each at its first repeat, in order of that repeat. */
function firstRepeats(items: readonly Located[]): Located[] {
  const seen = new Set<string>();
  const reported = new Set<string>();
  return items.filter((item) => {
    if (!seen.has(item.id)) {
      seen.add(item.id);
      return false;
    }
    if (reported.has(item.id)) return false;
    reported.add(item.id);
    return true;
  });
}

function duplicateStageIds(spec: ScenarioSpec): SpecProblem[] {
  const stages = spec.stages.map((stage, index) => ({ id: stage.stage_id, path: `stages[${index}].stage_id` }));
  return firstOccurrencesOfDuplicates(stages).map(({ id, path }) =>
    problem("duplicate_stage_id", path, `duplicate stage identifier: ${id}`),
  );
}

function duplicateGateIds(spec: ScenarioSpec): SpecProblem[] {
  const gates = spec.stages.flatMap((stage, stageIndex) =>
    stage.gates.map((gate, index) => ({ id: gate.gate_id, path: `stages[${stageIndex}].gates[${index}].gate_id` })),
  );
  return firstRepeats(gates).map(({ id, path }) =>
    problem("duplicate_gate_id", path, `duplicate gate identifier: ${id}`),
  );
}

function duplicatePacketIds(spec: ScenarioSpec): SpecProblem[] {
  const packets = spec.stages.flatMap((stage, stageIndex) =>
    stage.entry_packets.map((packet, index) => ({
      id: packet.packet_id,
      path: `stages[${stageIndex}].entry_packets[${index}].packet_id`,
    })),
  );
  return firstRepeats(packets).map(({ id, path }) =>
    problem("duplicate_packet_id", path, `duplicate packet identifier: ${id}`),
  );
}

function duplicateConditionIds(spec: ScenarioSpec): SpecProblem[] {
  const conditions = spec.conditions.map((condition, index) => ({
    id: condition.condition_id,
    path: `conditions[${index}].condition_id`,
  }));
  return firstOccurrencesOfDuplicates(conditions).map(({ id, path }) =>
    problem("duplicate_condition_id", path, `duplicate condition id: ${id}`),
  );
}

// Rust's `str::trim` strips Unicode White_Space, which differs from JavaScript's `trim` (U+0085 vs U+FEFF).
const RUST_WHITESPACE_ONLY = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/;

function malformedQueries(spec: ScenarioSpec): SpecProblem[] {
  return spec.conditions.flatMap((condition, index) => {
    const prefix = `invalid evidence query for condition ${condition.condition_id}`;
    const problems: SpecProblem[] = [];
    if (RUST_WHITESPACE_ONLY.test(condition.query.provider_id)) {
      const path = `conditions[${index}].query.provider_id`;
      problems.push(problem("empty_provider_id", path, `${prefix}: provider_id is empty`));
    }
    if (RUST_WHITESPACE_ONLY.test(condition.query.check_id)) {
      const path = `conditions[${index}].query.check_id`;
      problems.push(problem("empty_check_id", path, `${prefix}: check_id is empty`));
    }
    return problems;
  });
}

/** The first item of each distinct key, in order. */
function firstOfEach<T>(items: readonly T[], keyOf: (item: T) => string): T[] {
  const seen = new Set<string>();
  return items.filter((item) => {
    const key = keyOf(item);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function undefinedConditions(spec: ScenarioSpec, trees: StageTrees): SpecProblem[] {
  const defined = new Set(spec.conditions.map((condition) => condition.condition_id));
  const undefinedLeaves = trees.flat().flatMap((tree) => tree.leaves.filter((leaf) => !defined.has(leaf.conditionId)));
  return firstOfEach(undefinedLeaves, (leaf) => leaf.conditionId).map((leaf) =>
    problem("undefined_condition", pathOf(leaf.node), `gate references undefined condition: ${leaf.conditionId}`),
  );
}

function unknownBranchTargets(spec: ScenarioSpec): SpecProblem[] {
  const stageIds = new Set(spec.stages.map((stage) => stage.stage_id));
  const unknown = spec.stages.flatMap(branchTargets).filter(({ id }) => !stageIds.has(id));
  return firstOfEach(unknown, (target) => target.id).map(({ id, path }) =>
    problem("unknown_branch_target", path, `branch target refers to unknown stage: ${id}`),
  );
}

function branchTargets(stage: StageSpec, stageIndex: number): Located[] {
  const advance = stage.advance_to;
  const base = `stages[${stageIndex}].advance_to`;
  if (advance.kind === "fixed") return [{ id: advance.stage_id, path: `${base}.stage_id` }];
  if (advance.kind !== "branch") return [];
  const targets = advance.branches.map((rule, index) => ({
    id: rule.next_stage_id,
    path: `${base}.branches[${index}].next_stage_id`,
  }));
  if (advance.default !== null) targets.push({ id: advance.default, path: `${base}.default` });
  return targets;
}

// ---------------------------------------------------------------------------------------------------------------
// This project's tightening (README §5 D5), in spec order: scenario fields, stages, conditions, policies, schemas.

function findTighteningProblems(spec: ScenarioSpec, trees: StageTrees, limits: SpecLimits): SpecProblem[] {
  const check = new Checker(limits);
  check.count("stages", "stages", spec.stages.length, limits.maxStages, "too_many_stages");
  check.id("scenario_id", spec.scenario_id);
  check.id("spec_version", spec.spec_version);
  for (const [index, stage] of spec.stages.entries()) checkStage(check, stage, `stages[${index}]`, trees[index] ?? []);
  check.count("conditions", "conditions", spec.conditions.length, limits.maxConditions, "too_many_conditions");
  for (const [index, condition] of spec.conditions.entries()) {
    const path = `conditions[${index}]`;
    check.id(`${path}.condition_id`, condition.condition_id);
    check.id(`${path}.query.provider_id`, condition.query.provider_id);
    check.id(`${path}.query.check_id`, condition.query.check_id);
    check.tags(`${path}.policy_tags`, condition.policy_tags);
  }
  check.count("policies", "policies", spec.policies.length, limits.maxPolicies, "too_many_policies");
  for (const [index, policy] of spec.policies.entries()) check.id(`policies[${index}].policy_id`, policy.policy_id);
  check.count("schemas", "schemas", spec.schemas.length, limits.maxSchemas, "too_many_schemas");
  for (const [index, schema] of spec.schemas.entries()) check.id(`schemas[${index}].schema_id`, schema.schema_id);
  return check.problems;
}

function checkStage(check: Checker, stage: StageSpec, path: string, trees: readonly RequirementScan[]): void {
  const limits = check.limits;
  check.id(`${path}.stage_id`, stage.stage_id);
  const packetsPath = `${path}.entry_packets`;
  const packetCount = stage.entry_packets.length;
  check.count(packetsPath, "entry packets", packetCount, limits.maxEntryPacketsPerStage, "too_many_entry_packets");
  for (const [index, packet] of stage.entry_packets.entries()) checkPacket(check, packet, `${packetsPath}[${index}]`);
  check.count(`${path}.gates`, "gates", stage.gates.length, limits.maxGatesPerStage, "too_many_gates");
  for (const [index, gate] of stage.gates.entries()) check.id(`${path}.gates[${index}].gate_id`, gate.gate_id);
  for (const tree of trees) checkRequirement(check, tree);
  checkBranchRules(check, stage, path);
  if (stage.timeout !== null) check.tags(`${path}.timeout.policy_tags`, stage.timeout.policy_tags);
}

function checkPacket(check: Checker, packet: PacketSpec, path: string): void {
  check.id(`${path}.packet_id`, packet.packet_id);
  check.id(`${path}.schema_id`, packet.schema_id);
  check.labels(`${path}.visibility_labels`, packet.visibility_labels);
  check.tags(`${path}.policy_tags`, packet.policy_tags);
  check.payload(`${path}.payload`, packet);
}

function checkRequirement(check: Checker, tree: RequirementScan): void {
  const limits = check.limits;
  if (tree.nodeCount > limits.maxRequirementNodes) {
    const message = `requirement at ${tree.rootPath} has ${tree.nodeCount} nodes (limit ${limits.maxRequirementNodes})`;
    check.report("requirement_too_large", tree.rootPath, message);
  }
  if (tree.tooDeep !== undefined) {
    const path = pathOf(tree.tooDeep);
    const message = `requirement node at ${path} has depth ${tree.tooDeep.depth} (limit ${limits.maxRequirementDepth})`;
    check.report("requirement_too_deep", path, message);
  }
  for (const { node, min, size } of tree.groups) {
    const path = pathOf(node);
    if (min > BigInt(size)) {
      const message = `requirement group at ${path} requires min ${min} but has only ${size} requirements`;
      check.report("require_group_min_exceeds_len", path, message);
    } else if (min === 0n && size > 0) {
      const message = `requirement group at ${path} has min 0, so it is always true whatever its ${size} requirements`;
      check.report("require_group_min_zero", path, message);
    }
  }
}

function checkBranchRules(check: Checker, stage: StageSpec, stagePath: string): void {
  if (stage.advance_to.kind !== "branch") return;
  const branches = stage.advance_to.branches;
  const path = `${stagePath}.advance_to.branches`;
  check.count(path, "branch rules", branches.length, check.limits.maxBranchRulesPerStage, "too_many_branch_rules");
  const gateIds = new Set(stage.gates.map((gate) => gate.gate_id));
  for (const [index, rule] of branches.entries()) {
    if (gateIds.has(rule.gate_id)) continue;
    const rulePath = `${path}[${index}].gate_id`;
    const message = `branch rule at ${rulePath} names gate ${rule.gate_id}, not a gate of stage ${stage.stage_id}`;
    check.report("branch_unknown_gate", rulePath, message);
  }
}

/** Collects tightening problems and holds the limit checks shared by several places. */
class Checker {
  readonly problems: SpecProblem[] = [];

  constructor(readonly limits: SpecLimits) {}

  report(code: string, path: string, message: string): void {
    this.problems.push(problem(code, path, message));
  }

  count(path: string, what: string, count: number, limit: number, code: string): void {
    if (count > limit) this.report(code, path, `too many ${what} at ${path}: ${count} (limit ${limit})`);
  }

  id(path: string, id: string): void {
    this.length(path, id, "identifier", "id_too_long");
  }

  tags(path: string, tags: readonly string[]): void {
    this.count(path, "policy tags", tags.length, this.limits.maxPolicyTags, "too_many_policy_tags");
    for (const [index, tag] of tags.entries()) {
      this.length(`${path}[${index}]`, tag, "policy tag", "policy_tag_too_long");
    }
  }

  labels(path: string, labels: readonly string[]): void {
    const limit = this.limits.maxVisibilityLabels;
    this.count(path, "visibility labels", labels.length, limit, "too_many_visibility_labels");
    for (const [index, label] of labels.entries()) {
      this.length(`${path}[${index}]`, label, "visibility label", "visibility_label_too_long");
    }
  }

  payload(path: string, packet: PacketSpec): void {
    const size = this.payloadSize(path, packet);
    const limit = this.limits.maxPacketPayloadBytes;
    if (size !== undefined && size > limit) {
      const message = `payload of packet ${packet.packet_id} at ${path} is too large: ${size} bytes (limit ${limit})`;
      this.report("payload_too_large", path, message);
    }
  }

  /** Canonical JSON bytes or raw length; `undefined` for external payloads and unserializable JSON (reported). */
  private payloadSize(path: string, packet: PacketSpec): number | undefined {
    const payload = packet.payload;
    if (payload.kind === "bytes") return payload.bytes.length;
    if (payload.kind !== "json") return undefined;
    try {
      return Buffer.byteLength(canonicalJson(payload.value), "utf8");
    } catch (error) {
      if (!(error instanceof HashError)) throw error;
      const message = `payload of packet ${packet.packet_id} at ${path} cannot be canonicalized: ${error.message}`;
      this.report("payload_not_canonical", path, message);
      return undefined;
    }
  }

  private length(path: string, text: string, what: string, code: string): void {
    const bytes = Buffer.byteLength(text, "utf8");
    const limit = this.limits.maxIdBytes;
    if (bytes > limit) this.report(code, path, `${what} at ${path} is too long: ${bytes} UTF-8 bytes (limit ${limit})`);
  }
}
