import type { DecisionRecord, PacketRecord, SubmissionRecord, TriggerEvent } from "../../core/run/schema.js";
import type { RunHead, RunSession, StoredReceipt } from "../../core/run/store.js";
import type { RunReceipts } from "./backend.js";
import type { VerifiedRunLog } from "./verified-log.js";

/** The read view of one run that every backend hands the control plane: all reads go through the verified log. */
export class VerifiedRunSession implements RunSession {
  constructor(
    readonly head: RunHead,
    private readonly log: VerifiedRunLog,
    private readonly receipts: RunReceipts,
  ) {}

  async decisionForTrigger(triggerId: string): Promise<DecisionRecord | undefined> {
    return this.log.firstForTrigger("decision", triggerId);
  }

  async triggerEvent(triggerId: string): Promise<TriggerEvent | undefined> {
    return (await this.log.firstForTrigger("trigger", triggerId))?.event;
  }

  async lastDecision(): Promise<DecisionRecord | undefined> {
    return this.log.lastOf("decision");
  }

  async packetsOfDecision(decisionId: string): Promise<PacketRecord[]> {
    return this.log.packetsOf(decisionId);
  }

  async submission(submissionId: string): Promise<SubmissionRecord | undefined> {
    return this.log.submission(submissionId);
  }

  async issuedPacketIds(): Promise<string[]> {
    return (await this.log.allOf("packet")).map((packet) => packet.envelope.packet_id);
  }

  async lastReceipt(): Promise<StoredReceipt | undefined> {
    return this.receipts.last();
  }

  async receiptOfDecision(decisionId: string): Promise<StoredReceipt | undefined> {
    return this.receipts.ofDecision(decisionId);
  }
}
