import { ControlPlaneError } from "../core/errors.js";
import type { DecisionRecord, PacketRecord, RunState, SubmissionRecord } from "../core/run/schema.js";
import {
  countsOf,
  emptyAppendedRecords,
  type RunChange,
  type RunHead,
  type RunKey,
  type RunSession,
  type RunStateStore,
  runKeyText,
  StaleRunVersionError,
  type StoredReceipt,
} from "../core/run/store.js";

interface StoredRun {
  state: RunState;
  receipts: StoredReceipt[];
  version: number;
  decisionByTrigger: Map<string, DecisionRecord>;
  packetsByDecision: Map<string, PacketRecord[]>;
  submissionById: Map<string, SubmissionRecord>;
}

/**
 * A run-state store held in process memory (`[run_state_store] type = "memory"`): fast and complete, but
 * gone when the process exits. Records are copied in and out, so callers can never alias stored state.
 */
export class MemoryRunStateStore implements RunStateStore {
  private readonly runs = new Map<string, StoredRun>();

  async create(state: RunState, receipts: StoredReceipt[] = []): Promise<void> {
    const key = runKeyText(state);
    if (this.runs.has(key)) throw new ControlPlaneError("run_exists", `run already exists: ${state.run_id}`);
    const copy = structuredClone(state);
    const run: StoredRun = {
      state: { ...copy, ...emptyAppendedRecords() },
      receipts: structuredClone(receipts),
      version: 0,
      decisionByTrigger: new Map(),
      packetsByDecision: new Map(),
      submissionById: new Map(),
    };
    appendAll(run, copy);
    this.runs.set(key, run);
  }

  async open(key: RunKey): Promise<RunSession | undefined> {
    const run = this.runs.get(runKeyText(key));
    return run === undefined ? undefined : new MemoryRunSession(run);
  }

  async commit(key: RunKey, expectedVersion: number, change: RunChange): Promise<void> {
    const run = this.runs.get(runKeyText(key));
    if (run === undefined || run.version !== expectedVersion) throw new StaleRunVersionError(key);
    const copy = structuredClone(change);
    run.state.current_stage_id = copy.current_stage_id;
    run.state.stage_entered_at = copy.stage_entered_at;
    run.state.status = copy.status;
    appendAll(run, copy.appended);
    run.receipts.push(...(copy.receipts ?? []));
    run.version++;
  }

  async load(key: RunKey): Promise<RunState | undefined> {
    const run = this.runs.get(runKeyText(key));
    return run === undefined ? undefined : structuredClone(run.state);
  }

  async loadReceipts(key: RunKey): Promise<StoredReceipt[]> {
    return structuredClone(this.runs.get(runKeyText(key))?.receipts ?? []);
  }

  async ready(): Promise<boolean> {
    return true;
  }
}

function appendAll(run: StoredRun, records: RunChange["appended"]): void {
  const state = run.state;
  state.triggers.push(...records.triggers);
  state.gate_evals.push(...records.gate_evals);
  state.decisions.push(...records.decisions);
  state.packets.push(...records.packets);
  state.submissions.push(...records.submissions);
  state.tool_calls.push(...records.tool_calls);
  for (const decision of records.decisions) {
    if (!run.decisionByTrigger.has(decision.trigger_id)) run.decisionByTrigger.set(decision.trigger_id, decision);
  }
  for (const packet of records.packets) {
    const list = run.packetsByDecision.get(packet.decision_id) ?? [];
    list.push(packet);
    run.packetsByDecision.set(packet.decision_id, list);
  }
  for (const submission of records.submissions) run.submissionById.set(submission.submission_id, submission);
}

class MemoryRunSession implements RunSession {
  readonly head: RunHead;

  constructor(private readonly run: StoredRun) {
    const { state } = run;
    this.head = structuredClone({
      tenant_id: state.tenant_id,
      namespace_id: state.namespace_id,
      run_id: state.run_id,
      scenario_id: state.scenario_id,
      spec_hash: state.spec_hash,
      current_stage_id: state.current_stage_id,
      stage_entered_at: state.stage_entered_at,
      status: state.status,
      dispatch_targets: state.dispatch_targets,
      counts: countsOf(state),
      version: run.version,
    });
  }

  async decisionForTrigger(triggerId: string): Promise<DecisionRecord | undefined> {
    return structuredClone(this.run.decisionByTrigger.get(triggerId));
  }

  async triggerEvent(triggerId: string) {
    const record = this.run.state.triggers.find((trigger) => trigger.event.trigger_id === triggerId);
    return structuredClone(record?.event);
  }

  async lastDecision(): Promise<DecisionRecord | undefined> {
    return structuredClone(this.run.state.decisions.at(-1));
  }

  async packetsOfDecision(decisionId: string): Promise<PacketRecord[]> {
    return structuredClone(this.run.packetsByDecision.get(decisionId) ?? []);
  }

  async submission(submissionId: string): Promise<SubmissionRecord | undefined> {
    return structuredClone(this.run.submissionById.get(submissionId));
  }

  async issuedPacketIds(): Promise<string[]> {
    return this.run.state.packets.map((packet) => packet.envelope.packet_id);
  }

  async lastReceipt(): Promise<StoredReceipt | undefined> {
    return structuredClone(this.run.receipts.at(-1));
  }

  async receiptOfDecision(decisionId: string): Promise<StoredReceipt | undefined> {
    return structuredClone(this.run.receipts.find((receipt) => receipt.decision_id === decisionId));
  }
}
