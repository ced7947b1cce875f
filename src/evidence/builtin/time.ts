import { z } from "zod";
import { parseDateTime } from "../../core/compare/datetime.js";
import type { EvidenceContext } from "../../core/run/evidence.js";
import type { EvidenceQuery } from "../../core/spec/schema.js";
import { I64_MAX, isJsonObject, type JsonValue, U64_MAX } from "../../json/value.js";
import { type EvidenceProvider, EvidenceProviderFailure, jsonEvidence } from "../provider.js";

/** `[[providers]] name = "time"` config table. */
export const TimeProviderConfig = z.object({ allow_logical: z.boolean().default(true) });
export type TimeProviderConfig = z.output<typeof TimeProviderConfig>;

/**
 * The built-in `time` provider (evidence §1.2). It reads only the trigger time, never the clock:
 * `now` is the trigger time, `after`/`before` compare it strictly with a threshold.
 */
export function createTimeProvider(config: TimeProviderConfig = { allow_logical: true }): EvidenceProvider {
  return {
    providerId: "time",
    async query(query: EvidenceQuery, context: EvidenceContext) {
      const now = context.trigger_time;
      const anchor = {
        anchor_type: now.kind === "logical" ? "trigger_time_logical" : "trigger_time_unix_millis",
        anchor_value: now.value.toString(),
      };
      const checkKind = () => {
        if (now.kind === "logical" && !config.allow_logical) fail("logical timestamps are not permitted");
      };
      switch (query.check_id) {
        case "now":
          checkKind();
          return jsonEvidence(now.value, { evidence_anchor: anchor });
        case "after":
          return jsonEvidence(now.value > threshold(query.params, now.kind, checkKind), { evidence_anchor: anchor });
        case "before":
          return jsonEvidence(now.value < threshold(query.params, now.kind, checkKind), { evidence_anchor: anchor });
        default:
          return fail("unsupported time check");
      }
    },
  };
}

function fail(message: string): never {
  throw new EvidenceProviderFailure(message);
}

/** The `timestamp` param as a value of the trigger's kind: unix millis (i64) or a logical tick (u64). */
function threshold(params: JsonValue | undefined, kind: "logical" | "unix_millis", checkKind: () => void): bigint {
  if (params === undefined) fail("time check requires params");
  if (!isJsonObject(params)) fail("time params must be an object");
  const timestamp = params.timestamp;
  if (timestamp === undefined) fail("missing timestamp param");
  checkKind();
  return kind === "logical" ? logicalThreshold(timestamp) : unixMillisThreshold(timestamp);
}

function logicalThreshold(timestamp: JsonValue): bigint {
  if (typeof timestamp !== "bigint" && typeof timestamp !== "number") fail("logical timestamp must be numeric");
  if (typeof timestamp !== "bigint" || timestamp < 0n || timestamp > U64_MAX)
    fail("logical timestamp must be unsigned");
  return timestamp;
}

function unixMillisThreshold(timestamp: JsonValue): bigint {
  if (typeof timestamp === "bigint") {
    if (timestamp > I64_MAX) fail("timestamp exceeds i64 range");
    return timestamp;
  }
  if (typeof timestamp === "number") fail("invalid numeric timestamp");
  if (typeof timestamp === "string") {
    const nanos = parseDateTime(timestamp);
    if (nanos === undefined) fail("invalid rfc3339 timestamp");
    return nanos / 1_000_000n;
  }
  return fail("timestamp must be number or string");
}
