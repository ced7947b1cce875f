import { z } from "zod";
import { RUNTIME_ACTIONS, RUNTIME_DECISIONS } from "../../actions/capabilities.js";
import { fromLosslessJson, prettyJson, SORTED_JSON_CANONICALIZATION } from "../../actions/sorted-json.js";
import { evaluateStage356 } from "../../actions/stage356.js";
import { STAGE356_PATHS, seriesTimestamp, TIMESTAMP_PATTERN } from "../../actions/stage356-format.js";
import { AnyJson, omittedWhenNull } from "../../core/wire/common.js";
import type { JsonValue } from "../../json/value.js";
import { compactJson } from "../../json/write.js";
import { defineTool } from "./tool.js";

/*
 * `runtime_action_evaluate` (spec §6 item 2): `decision-gate action` as a tool, with the documents given as JSON
 * instead of files. Nothing is read from disk or the environment; enforcement comes only from `enforce`.
 */

const TIMESTAMP_MESSAGE = "expected YYYY-MM-DDTHH:MM:SSZ";

/** A document argument: any JSON value is taken (see `documentBytes`); clients are told what makes sense. */
function documentArg(what: string) {
  return AnyJson.meta({
    type: ["object", "string", "null"],
    description: `${what} The JSON document, or the file's raw text (hashed as given); null stands for a missing file.`,
  });
}

const EvaluateArgs = z.object({
  receipt: documentArg("Stage356 runtime execution receipt."),
  gate: documentArg("Stage356 fail-closed gate."),
  stage355: omittedWhenNull(
    z.object({
      result: documentArg("stage355_revocation_enforcement_result.json."),
      status: documentArg("stage355_key_status_verification.json."),
    }),
  ).describe("The two Stage355 files Stage356 read, for the deep chain check."),
  enforce: omittedWhenNull(z.boolean()).describe(
    "Enforcement mode: a terminate action reports exit_code 1. Default false (report only).",
  ),
  created_at: omittedWhenNull(z.string().regex(TIMESTAMP_PATTERN, TIMESTAMP_MESSAGE)).describe(
    "Time recorded in the action receipt (YYYY-MM-DDTHH:MM:SSZ); default: the server's clock.",
  ),
  receipt_path: omittedWhenNull(z.string()).describe(
    `Path recorded as source_receipt_path; default ${STAGE356_PATHS.receipt}.`,
  ),
  gate_path: omittedWhenNull(z.string()).describe(`Path named in the summary; default ${STAGE356_PATHS.gate}.`),
});

/**
 * The file a document argument stands for: text is the file's content as given; `null` is a missing file; a JSON
 * value is written as Stage356 writes its files. A value the Stage356 canonicalization refuses (floats, non-ASCII
 * keys) is passed on losslessly, so verification refuses it as it would refuse the file.
 */
function documentBytes(document: JsonValue): Uint8Array | null {
  if (document === null) return null;
  if (typeof document === "string") return Buffer.from(document, "utf8");
  const plain = fromLosslessJson(document);
  return Buffer.from(plain === undefined ? compactJson(document) : prettyJson(plain), "utf8");
}

const HASH = { type: "string", pattern: "^[0-9a-f]{64}$" };
const NULLABLE_HASH = { type: ["string", "null"], pattern: "^[0-9a-f]{64}$" };
const STRINGS = { type: "array", items: { type: "string" } };
const RECEIPT_SCHEMA = {
  type: "object",
  additionalProperties: false,
  properties: {
    stage: { const: 357 },
    engine: { type: "string" },
    source_stage: { const: 356 },
    created_at: { type: "string", pattern: TIMESTAMP_PATTERN.source },
    previous_hash: { ...NULLABLE_HASH, description: "The Stage356 entry_hash." },
    source_receipt_path: { type: "string" },
    source_receipt_sha256: { ...NULLABLE_HASH, description: "Declared Stage356 receipt_sha256 (re-verified)." },
    source_receipt_file_sha256: { ...NULLABLE_HASH, description: "SHA-256 of the receipt file's raw bytes." },
    runtime_decision: { enum: [...RUNTIME_DECISIONS] },
    action: { enum: [...RUNTIME_ACTIONS] },
    capabilities: {
      type: "object",
      additionalProperties: false,
      properties: { allowed: STRINGS, isolated: STRINGS },
      required: ["allowed", "isolated"],
    },
    enforcement: {
      type: "object",
      additionalProperties: false,
      properties: { mode: { enum: ["enforce", "report_only"] }, exit_code: { enum: [0, 1] } },
      required: ["mode", "exit_code"],
    },
    checks: {
      type: "object",
      additionalProperties: { type: "boolean" },
      description: "Every verification check by name; any false means terminate.",
    },
    violations: STRINGS,
    reasons: { ...STRINGS, description: "Stage356's reasons, or check_failed:<check> for each failed check." },
    canonicalization: { const: SORTED_JSON_CANONICALIZATION },
    entry_hash: HASH,
    receipt_sha256: { ...HASH, description: "Over the canonical receipt without receipt_sha256." },
  },
  required: [
    "stage",
    "engine",
    "source_stage",
    "created_at",
    "previous_hash",
    "source_receipt_path",
    "source_receipt_sha256",
    "source_receipt_file_sha256",
    "runtime_decision",
    "action",
    "capabilities",
    "enforcement",
    "checks",
    "violations",
    "reasons",
    "canonicalization",
    "entry_hash",
    "receipt_sha256",
  ],
};

const OUTPUT_SCHEMA = {
  $schema: "https://json-schema.org/draft/2020-12/schema",
  type: "object",
  additionalProperties: false,
  properties: {
    policy: {
      type: "object",
      description: "stage357_runtime_action_policy.json: mapping, capability sets, fail-closed and enforcement rules.",
    },
    receipt: { ...RECEIPT_SCHEMA, description: "stage357_runtime_action_receipt.json." },
    summary: { type: "string", description: "stage357_runtime_action_summary.txt." },
  },
  required: ["policy", "receipt", "summary"],
};

/** Not a tool of the reference, so it brings its own contract. */
export const RUNTIME_ACTION_TOOL = defineTool({
  name: "runtime_action_evaluate",
  args: EvaluateArgs,
  argumentSize: "small",
  annotations: { readOnlyHint: true, idempotentHint: true },
  contract: {
    description:
      "Verify a Stage356 runtime receipt and gate fail closed and map the decision to a runtime action " +
      "(allow → continue, warn → isolate_and_continue, block or any failed check → terminate). " +
      "Returns the Stage357 policy, action receipt and summary.",
    outputSchema: OUTPUT_SCHEMA,
  },
  async run(request) {
    const { policy, receipt, summary } = evaluateStage356({
      receiptBytes: documentBytes(request.receipt),
      gateBytes: documentBytes(request.gate),
      stage355: request.stage355 && {
        resultBytes: documentBytes(request.stage355.result),
        statusBytes: documentBytes(request.stage355.status),
      },
      githubActions: false,
      enforce: request.enforce === true,
      createdAt: request.created_at ?? seriesTimestamp(new Date()),
      paths: {
        receipt: request.receipt_path ?? STAGE356_PATHS.receipt,
        gate: request.gate_path ?? STAGE356_PATHS.gate,
      },
    });
    return { policy, receipt, summary };
  },
});

export const ACTION_TOOLS = [RUNTIME_ACTION_TOOL];
