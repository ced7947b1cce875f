import { type HashDigest, hashCanonical } from "../../json/hash.js";
import { type JsonValue, jsonEquals } from "../../json/value.js";
import { createDispatchPolicy, type DispatchPolicy } from "../dispatch/policy.js";
import { ConflictError, ControlPlaneError, DecisionGateError } from "../errors.js";
import { specHash } from "../spec/hash.js";
import type { SpecLimits } from "../spec/limits.js";
import type { ScenarioSpec, StageSpec } from "../spec/schema.js";
import { validateSpec } from "../spec/validate.js";
import type { Timestamp, TriState } from "../wire/common.js";
import {
  holdOutcome,
  resolveTransition,
  stageById,
  type Transition,
  timeoutFired,
  transitionOutcome,
} from "./decide.js";
import {
  DEFAULT_TRUST_POLICY,
  type Disclosure,
  type EvidenceSource,
  evaluateGates,
  KEEP_ALL,
  type ProviderMissing,
  queryStageEvidence,
  type TrustPolicy,
} from "./evidence.js";
import { KeyedMutex } from "./keyed-mutex.js";
import { type Dispatcher, issueStagePackets, mcpDispatcher, payloadHash } from "./packets.js";
import type { ReceiptIssuer } from "./receipts.js";
import type {
  NextRequest,
  NextResult,
  ScenarioStatus,
  StatusRequest,
  SubmitRequest,
  SubmitResult,
} from "./requests.js";
import type {
  DecisionOutcome,
  DecisionRecord,
  GateEvalRecord,
  PacketRecord,
  RunConfig,
  RunState,
  RunStatus,
  ToolCallError,
  ToolCallMethod,
  ToolCallRecord,
  TriggerEvent,
} from "./schema.js";
import {
  emptyAppendedRecords,
  type RunChange,
  type RunHead,
  type RunKey,
  type RunLookahead,
  type RunSession,
  type RunStateStore,
  runKeyText,
  StaleRunVersionError,
  type StoredReceipt,
} from "./store.js";

export interface ControlPlaneOptions {
  store: RunStateStore;
  evidence: EvidenceSource;
  trust?: TrustPolicy;
  dispatchPolicy?: DispatchPolicy;
  dispatcher?: Dispatcher;
  specLimits?: SpecLimits;
  /**
   * Which providers' raw evidence values are recorded in run state (and so in runpacks). By default all of them,
   * as the reference records them; `[evidence] record_raw_values = false` passes the disclosure policy instead.
   * Hashes, anchors and refs are always recorded.
   */
  recordDisclosure?: Disclosure;
  /**
   * Waits before re-running a step that lost a commit race (attempt 1, 2, ...). Another process sharing the store
   * can win repeatedly; a growing, jittered wait (supplied by the server, since the core keeps no clock) lets the
   * loser through. By default it only yields to other tasks.
   */
  backoff?: (attempt: number) => Promise<void>;
  /** Issues an action receipt for every new decision (the runtime action layer); none when absent. */
  receipts?: ReceiptIssuer;
}

/** What one serialized step on a run produced: a result, the records to commit, and maybe an error to raise. */
interface RunStep<T> {
  result?: T;
  change?: RunChange;
  error?: DecisionGateError;
}

/**
 * How often a step holding the run is re-run on fresh state when another writer still committed first: on a store
 * that holds runs across processes only after losing that hold (a lost connection); on one that has no such hold
 * (SQLite files shared by processes on one machine) whenever another process's queue wins, so the bound is set
 * well above the bursts a run sees: with the server's backoff it gives up after seconds, not after a few races.
 */
const MAX_COMMIT_ATTEMPTS = 64;
const locksByStore = new WeakMap<RunStateStore, KeyedMutex>();

/**
 * The deterministic control plane of one scenario (engine §4). It never reads the clock: every time comes
 * from the request. Calls on one run are serialized, and each commit is checked against the version it read.
 */
export class ControlPlane {
  readonly spec: ScenarioSpec;
  readonly specHash: HashDigest;
  private readonly store: RunStateStore;
  private readonly evidence: EvidenceSource;
  private readonly trust: TrustPolicy;
  private readonly dispatchPolicy: DispatchPolicy;
  private readonly dispatcher: Dispatcher;
  private readonly recordDisclosure: Disclosure;
  private readonly backoff: (attempt: number) => Promise<void>;
  private readonly receipts: ReceiptIssuer | undefined;
  private readonly locks: KeyedMutex;

  constructor(spec: ScenarioSpec, options: ControlPlaneOptions) {
    validateSpec(spec, options.specLimits);
    this.spec = spec;
    this.specHash = specHash(spec);
    this.store = options.store;
    this.evidence = options.evidence;
    this.trust = options.trust ?? DEFAULT_TRUST_POLICY;
    this.dispatchPolicy = options.dispatchPolicy ?? createDispatchPolicy({ engine: "permit_all" });
    this.dispatcher = options.dispatcher ?? mcpDispatcher;
    this.recordDisclosure = options.recordDisclosure ?? KEEP_ALL;
    this.backoff = options.backoff ?? (() => Promise.resolve());
    this.receipts = options.receipts;
    this.locks = locksByStore.get(options.store) ?? new KeyedMutex();
    locksByStore.set(options.store, this.locks);
  }

  /** Starts a run (engine §4.2); with `issueEntryPackets`, records the `init` trigger, the start decision and stage 0's packets. */
  async start(config: RunConfig, startedAt: Timestamp, issueEntryPackets: boolean): Promise<StartOutcome> {
    if (config.scenario_id !== this.spec.scenario_id) {
      throw new ControlPlaneError("scenario_mismatch", `scenario mismatch for run: ${config.scenario_id}`);
    }
    if (config.namespace_id !== this.spec.namespace_id) {
      throw new ControlPlaneError("namespace_mismatch", `namespace mismatch for run: ${config.namespace_id}`);
    }
    return this.locks.run(runKeyText(config), async () => {
      if ((await this.store.open(config)) !== undefined) {
        throw new ControlPlaneError("run_exists", `run already exists: ${config.run_id}`);
      }
      const state = this.initialState(config, startedAt);
      if (issueEntryPackets) await this.recordStart(state, startedAt);
      const start = state.decisions[0];
      const receipt = start === undefined ? null : this.issueReceipt(state, start, false, undefined);
      await this.store.create(state, receipt === null ? [] : [receipt]);
      return { state, receipt };
    });
  }

  /** An agent asks the run to move on (engine §4.3): the `agent_request_next` trigger. */
  async next(request: NextRequest): Promise<TriggerOutcome> {
    const trigger: TriggerEvent = {
      trigger_id: request.trigger_id,
      tenant_id: request.tenant_id,
      namespace_id: request.namespace_id,
      run_id: request.run_id,
      kind: "agent_request_next",
      time: request.time,
      source_id: request.agent_id,
      payload: null,
      correlation_id: request.correlation_id,
    };
    return this.onTrigger(trigger, "scenario.next", hashOf(request));
  }

  /** An external trigger event (engine §4.3). */
  async trigger(event: TriggerEvent): Promise<TriggerOutcome> {
    return this.onTrigger(event, "scenario.trigger", hashOf(event));
  }

  /** Records a submission (engine §4.9): idempotent for identical content, a conflict otherwise. */
  async submit(request: SubmitRequest): Promise<SubmitResult> {
    const requestHash = hashOf(request);
    return this.withRun(request, async (session) => {
      const existing = await session.submission(request.submission_id);
      const call = {
        method: "scenario.submit",
        requestHash,
        at: request.submitted_at,
        correlationId: request.correlation_id,
      } as const;
      if (existing === undefined) {
        const record = {
          submission_id: request.submission_id,
          run_id: request.run_id,
          payload: request.payload,
          content_type: request.content_type,
          content_hash: payloadHash(request.payload),
          submitted_at: request.submitted_at,
          correlation_id: request.correlation_id,
        };
        const result = { record };
        const change = unchanged(session.head);
        change.appended.submissions.push(record);
        change.appended.tool_calls.push(toolCall(session.head, call, hashOf(result), null));
        return { result, change };
      }
      if (existing.content_type === request.content_type && jsonEquals(existing.payload, request.payload)) {
        const result = { record: existing };
        return { result, change: withToolCall(session.head, toolCall(session.head, call, hashOf(result), null)) };
      }
      const failure: ToolCallError = {
        code: "submission_conflict",
        message: "submission_id conflicts with existing record",
        details: { kind: "message", info: `submission_id=${request.submission_id}` },
      };
      return {
        change: withToolCall(session.head, toolCall(session.head, call, hashOf(failure), failure)),
        error: new ConflictError("submission_conflict", `submission_id conflict: ${request.submission_id}`),
      };
    });
  }

  /** Reports where a run stands (engine §4.8); like the reference, the call itself is recorded. */
  async status(request: StatusRequest): Promise<ScenarioStatus> {
    const requestHash = hashOf(request);
    return this.withRun(request, async (session) => {
      const head = session.head;
      const last = (await session.lastDecision()) ?? null;
      const result: ScenarioStatus = {
        run_id: head.run_id,
        scenario_id: head.scenario_id,
        current_stage_id: head.current_stage_id,
        status: head.status,
        last_decision: last,
        issued_packet_ids: await session.issuedPacketIds(),
        safe_summary: last?.outcome.kind === "hold" ? last.outcome.summary : null,
      };
      const call = {
        method: "scenario.status",
        requestHash,
        at: request.requested_at,
        correlationId: request.correlation_id,
      } as const;
      const change = withToolCall(head, toolCall(head, call, hashOf(result), null));
      return { result, change };
    });
  }

  private initialState(config: RunConfig, startedAt: Timestamp): RunState {
    const firstStage = this.spec.stages[0] as StageSpec;
    return {
      tenant_id: config.tenant_id,
      namespace_id: config.namespace_id,
      run_id: config.run_id,
      scenario_id: config.scenario_id,
      spec_hash: this.specHash,
      current_stage_id: firstStage.stage_id,
      stage_entered_at: startedAt,
      status: "active",
      dispatch_targets: config.dispatch_targets,
      ...emptyAppendedRecords(),
    };
  }

  private async recordStart(state: RunState, startedAt: Timestamp): Promise<void> {
    const stage = this.spec.stages[0] as StageSpec;
    const trigger: TriggerEvent = {
      trigger_id: "init",
      tenant_id: state.tenant_id,
      namespace_id: state.namespace_id,
      run_id: state.run_id,
      kind: "external_event",
      time: startedAt,
      source_id: "system",
      payload: null,
      correlation_id: null,
    };
    const decision = decisionRecord(1, trigger, stage.stage_id, { kind: "start", stage_id: stage.stage_id });
    state.packets = await this.issuePackets(state, stage, decision);
    state.triggers = [{ seq: 1n, event: trigger }];
    state.decisions = [decision];
  }

  private async onTrigger(
    trigger: TriggerEvent,
    method: ToolCallMethod,
    requestHash: HashDigest,
  ): Promise<TriggerOutcome> {
    const step = async (session: RunSession): Promise<RunStep<TriggerOutcome>> => {
      const head = session.head;
      const call = { method, requestHash, at: trigger.time, correlationId: trigger.correlation_id };
      const missing = this.evidence.validateProviders(this.spec);
      if (missing !== null) {
        const failure = providerMissingFailure(missing);
        return {
          change: withToolCall(head, toolCall(head, call, hashOf(failure), failure)),
          error: new ControlPlaneError("provider_missing", `provider validation failed: ${describeMissing(missing)}`, {
            ...missing,
          }),
        };
      }
      const { result, change, replayed, receipt } = await this.decide(session, trigger);
      change.appended.tool_calls.push(toolCall(head, call, hashOf(result), null));
      const gateEvals = replayed ? null : change.appended.gate_evals;
      return { result: { result, replayed, gateEvals, receipt }, change };
    };
    return this.withRun(trigger, step, { decisionOf: trigger.trigger_id });
  }

  /** Engine §4.3 step 3: replay, timeout, or evaluate the gates and decide. */
  private async decide(
    session: RunSession,
    trigger: TriggerEvent,
  ): Promise<{ result: NextResult; change: RunChange; replayed: boolean; receipt: StoredReceipt | null }> {
    const head = session.head;
    if (head.status !== "active") return this.replayLastDecision(session);
    const earlier = await session.decisionForTrigger(trigger.trigger_id);
    if (earlier !== undefined) return this.replayDecision(session, earlier, trigger);

    const change = unchanged(head);
    change.appended.triggers.push({ seq: BigInt(head.counts.triggers + 1), event: trigger });
    const stage = stageById(this.spec, head.current_stage_id);
    const seq = head.counts.decisions + 1;
    let decided: Decided;
    let integrity = false;
    if (timeoutFired(stage, head.stage_entered_at, trigger)) {
      decided = await this.decideTimeout(head, stage, trigger, seq);
    } else {
      const { gateEvals, integrityFailure } = await this.evaluateStage(head, stage, trigger);
      change.appended.gate_evals.push(...gateEvals);
      const statuses = new Map(gateEvals.map((record) => [record.evaluation.gate_id, record.evaluation.status]));
      decided = await this.decideFromGates(head, stage, trigger, seq, statuses);
      integrity = integrityFailure;
    }
    change.appended.decisions.push(decided.decision);
    change.appended.packets.push(...decided.packets);
    change.current_stage_id = decided.stageId;
    change.stage_entered_at = decided.enteredAt;
    change.status = decided.status;
    const result = { decision: decided.decision, packets: decided.packets, status: decided.status };
    const previous = this.receipts === undefined ? undefined : await session.lastReceipt();
    const receipt = this.issueReceipt(head, decided.decision, integrity, previous);
    if (receipt !== null) change.receipts = [receipt];
    return { result, change, replayed: false, receipt };
  }

  /** The action receipt of a new decision, chained to the run's previous one; null without a receipt issuer. */
  private issueReceipt(
    run: Pick<RunHead, "tenant_id" | "namespace_id" | "run_id" | "scenario_id">,
    decision: DecisionRecord,
    integrityFailure: boolean,
    previous: StoredReceipt | undefined,
  ): StoredReceipt | null {
    if (this.receipts === undefined) return null;
    const facts = { ...pickRunIds(run), decision, integrityFailure };
    return this.receipts.issue(facts, previous);
  }

  private async replayLastDecision(session: RunSession) {
    const last = await session.lastDecision();
    if (last === undefined) {
      throw new ControlPlaneError("run_inactive", `run is not active: ${debugStatus(session.head.status)}`);
    }
    return this.replayResult(session, last);
  }

  /** D4: a re-sent trigger id must carry the same content as the recorded trigger. */
  private async replayDecision(session: RunSession, decision: DecisionRecord, trigger: TriggerEvent) {
    const recorded = await session.triggerEvent(trigger.trigger_id);
    if (recorded !== undefined && !sameTriggerContent(recorded, trigger)) {
      throw new ConflictError("trigger_conflict", `trigger_id conflict: ${trigger.trigger_id}`, {
        trigger_id: trigger.trigger_id,
      });
    }
    return this.replayResult(session, decision);
  }

  private async replayResult(session: RunSession, decision: DecisionRecord) {
    const packets = await session.packetsOfDecision(decision.decision_id);
    const receipt = (await session.receiptOfDecision(decision.decision_id)) ?? null;
    const result = { decision, packets, status: session.head.status };
    return { result, change: unchanged(session.head), replayed: true, receipt };
  }

  private async evaluateStage(head: RunHead, stage: StageSpec, trigger: TriggerEvent) {
    const context = {
      tenant_id: head.tenant_id,
      namespace_id: head.namespace_id,
      run_id: head.run_id,
      scenario_id: head.scenario_id,
      stage_id: stage.stage_id,
      trigger_id: trigger.trigger_id,
      trigger_time: trigger.time,
      correlation_id: trigger.correlation_id,
    };
    const evidence = await queryStageEvidence(this.spec, stage, this.evidence, context, this.recordDisclosure);
    const gateEvals = evaluateGates(this.spec, stage, evidence.records, this.trust, trigger.trigger_id);
    return { gateEvals, integrityFailure: evidence.integrityFailure };
  }

  private async decideFromGates(
    head: RunHead,
    stage: StageSpec,
    trigger: TriggerEvent,
    seq: number,
    statuses: Map<string, TriState>,
  ): Promise<Decided> {
    const unmet = stage.gates.filter((gate) => statuses.get(gate.gate_id) !== "True").map((gate) => gate.gate_id);
    if (unmet.length > 0)
      return this.stay(head, decisionRecord(seq, trigger, stage.stage_id, holdOutcome(unmet)), head.status);
    const transition = resolveTransition(this.spec, stage, (gateId) => statuses.get(gateId) ?? "Unknown");
    return this.applyTransition(head, stage, trigger, seq, transition, false);
  }

  private async decideTimeout(head: RunHead, stage: StageSpec, trigger: TriggerEvent, seq: number): Promise<Decided> {
    if (stage.on_timeout === "fail") {
      return this.stay(
        head,
        decisionRecord(seq, trigger, stage.stage_id, { kind: "fail", reason: "timeout" }),
        "failed",
      );
    }
    const assumed: TriState = stage.on_timeout === "advance_with_flag" ? "True" : "Unknown";
    const gateIds = new Set(stage.gates.map((gate) => gate.gate_id));
    const transition = resolveTransition(this.spec, stage, (gateId) => (gateIds.has(gateId) ? assumed : "Unknown"));
    return this.applyTransition(head, stage, trigger, seq, transition, true);
  }

  private async applyTransition(
    head: RunHead,
    stage: StageSpec,
    trigger: TriggerEvent,
    seq: number,
    transition: Transition,
    timeout: boolean,
  ): Promise<Decided> {
    const outcome = transitionOutcome(stage, transition, timeout);
    if (transition.kind === "complete")
      return this.stay(head, decisionRecord(seq, trigger, stage.stage_id, outcome), "completed");
    const next = transition.to;
    const decision = decisionRecord(seq, trigger, stage.stage_id, outcome);
    try {
      const packets = await this.issuePackets(head, next, decision);
      return { decision, packets, status: head.status, stageId: next.stage_id, enteredAt: trigger.time };
    } catch (error) {
      if (!(error instanceof DecisionGateError)) throw error;
      const failed = { ...decision, outcome: { kind: "fail" as const, reason: error.message } };
      return this.stay(head, failed, "failed");
    }
  }

  private stay(head: RunHead, decision: DecisionRecord, status: RunStatus): Decided {
    return { decision, packets: [], status, stageId: head.current_stage_id, enteredAt: head.stage_entered_at };
  }

  private issuePackets(
    run: { scenario_id: string; run_id: string; dispatch_targets: RunHead["dispatch_targets"] },
    stage: StageSpec,
    decision: DecisionRecord,
  ): Promise<PacketRecord[]> {
    const issue = {
      scenarioId: run.scenario_id,
      runId: run.run_id,
      stage,
      decisionId: decision.decision_id,
      issuedAt: decision.decided_at,
      correlationId: decision.correlation_id,
      targets: run.dispatch_targets,
    };
    return issueStagePackets(issue, this.dispatchPolicy, this.dispatcher);
  }

  /**
   * Serializes a step on one run and commits it. When another process committed first, the step runs again on
   * fresh state holding the run against other processes (`RunStateStore.exclusive`), so that this call goes next.
   */
  private async withRun<T>(
    key: RunKey,
    step: (session: RunSession) => Promise<RunStep<T>>,
    lookahead?: RunLookahead,
  ): Promise<T> {
    return this.locks.run(runKeyText(key), async () => {
      try {
        return await this.runStep(key, step, lookahead);
      } catch (error) {
        if (!(error instanceof StaleRunVersionError)) throw error;
      }
      return this.store.exclusive(key, async () => {
        for (let attempt = 1; ; attempt++) {
          try {
            return await this.runStep(key, step, lookahead);
          } catch (error) {
            if (!(error instanceof StaleRunVersionError) || attempt >= MAX_COMMIT_ATTEMPTS) throw error;
            await this.backoff(attempt);
          }
        }
      });
    });
  }

  /** Opens the run, runs `step` on it and commits what it changed; `StaleRunVersionError` when another won. */
  private async runStep<T>(
    key: RunKey,
    step: (session: RunSession) => Promise<RunStep<T>>,
    lookahead: RunLookahead | undefined,
  ): Promise<T> {
    const session = await this.store.open(key, lookahead);
    if (session === undefined) throw new ControlPlaneError("run_not_found", `run not found: ${key.run_id}`);
    this.checkBinding(session.head);
    const outcome = await step(session);
    if (outcome.change !== undefined) await this.store.commit(key, session.head.version, outcome.change);
    if (outcome.error !== undefined) throw outcome.error;
    return outcome.result as T;
  }

  /** D3: a run is driven only by the scenario, and the exact spec, it was started with. */
  private checkBinding(head: RunHead): void {
    if (head.scenario_id !== this.spec.scenario_id) {
      throw new ControlPlaneError(
        "run_scenario_mismatch",
        `run ${head.run_id} belongs to scenario ${head.scenario_id}, not ${this.spec.scenario_id}`,
      );
    }
    if (head.spec_hash.value !== this.specHash.value) {
      throw new ControlPlaneError(
        "run_spec_mismatch",
        `run ${head.run_id} was started with spec hash ${head.spec_hash.value}, not ${this.specHash.value}`,
      );
    }
  }
}

/** A started run and the action receipt of its start decision (null when none was made or receipts are off). */
export interface StartOutcome {
  state: RunState;
  receipt: StoredReceipt | null;
}

/** A trigger's result and the gate evaluations it recorded; null when an earlier decision was replayed. */
export interface TriggerOutcome {
  result: NextResult;
  /** Whether an earlier decision was returned instead of a new one. */
  replayed: boolean;
  gateEvals: GateEvalRecord[] | null;
  /** The decision's action receipt (also for a replayed decision), or null without a receipt issuer. */
  receipt: StoredReceipt | null;
}

interface Decided {
  decision: DecisionRecord;
  packets: PacketRecord[];
  status: RunStatus;
  stageId: string;
  enteredAt: Timestamp;
}

interface CallInfo {
  method: ToolCallMethod;
  requestHash: HashDigest;
  at: Timestamp;
  correlationId: string | null;
}

function pickRunIds(run: Pick<RunHead, "tenant_id" | "namespace_id" | "run_id" | "scenario_id">) {
  return { tenant_id: run.tenant_id, namespace_id: run.namespace_id, run_id: run.run_id, scenario_id: run.scenario_id };
}

function hashOf(value: JsonValue): HashDigest {
  return hashCanonical(value);
}

function decisionRecord(seq: number, trigger: TriggerEvent, stageId: string, outcome: DecisionOutcome): DecisionRecord {
  return {
    decision_id: `decision-${seq}`,
    seq: BigInt(seq),
    trigger_id: trigger.trigger_id,
    stage_id: stageId,
    decided_at: trigger.time,
    outcome,
    correlation_id: trigger.correlation_id,
  };
}

function toolCall(
  head: RunHead,
  call: CallInfo,
  responseHash: HashDigest,
  error: ToolCallError | null,
): ToolCallRecord {
  return {
    call_id: `call-${head.counts.tool_calls + 1}`,
    method: call.method,
    request_hash: call.requestHash,
    response_hash: responseHash,
    called_at: call.at,
    correlation_id: call.correlationId,
    error,
  };
}

function unchanged(head: RunHead): RunChange {
  return {
    current_stage_id: head.current_stage_id,
    stage_entered_at: head.stage_entered_at,
    status: head.status,
    appended: emptyAppendedRecords(),
  };
}

function withToolCall(head: RunHead, record: ToolCallRecord): RunChange {
  const change = unchanged(head);
  change.appended.tool_calls.push(record);
  return change;
}

/** Trigger content that must match on a replay; the correlation id may differ between retries. */
function sameTriggerContent(recorded: TriggerEvent, incoming: TriggerEvent): boolean {
  return (
    recorded.kind === incoming.kind &&
    recorded.source_id === incoming.source_id &&
    jsonEquals(recorded.time, incoming.time) &&
    jsonEquals(recorded.payload, incoming.payload)
  );
}

function providerMissingFailure(missing: ProviderMissing): ToolCallError {
  return {
    code: "provider_missing",
    message: "required evidence providers are missing or blocked",
    details: { kind: "provider_missing", ...missing },
  };
}

/** The reference's Debug rendering of `ProviderMissingError`, kept for message compatibility. */
function describeMissing(missing: ProviderMissing): string {
  const list = (items: string[]) => `[${items.map((item) => JSON.stringify(item)).join(", ")}]`;
  return `ProviderMissingError { missing_providers: ${list(missing.missing_providers)}, required_capabilities: ${list(missing.required_capabilities)}, blocked_by_policy: ${missing.blocked_by_policy} }`;
}

function debugStatus(status: RunStatus): string {
  return status.charAt(0).toUpperCase() + status.slice(1);
}
