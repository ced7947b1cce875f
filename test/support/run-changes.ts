import { emptyAppendedRecords, type RunChange } from "../../src/core/run/store.js";
import { logical } from "./scenarios.js";

/** A change appending one tool-call record, as a status call would (`message`: the call failed with it). */
export function toolCallChange(callId: string, message = ""): RunChange {
  const appended = emptyAppendedRecords();
  const digest = { algorithm: "sha256" as const, value: "00" };
  appended.tool_calls.push({
    call_id: callId,
    method: "scenario.status",
    request_hash: digest,
    response_hash: digest,
    called_at: logical(2),
    correlation_id: null,
    error: message === "" ? null : { code: "failed", message, details: null },
  });
  return { current_stage_id: "review", stage_entered_at: logical(1), status: "active", appended };
}
