/**
 * A signed-evidence provider: a standard MCP server (official SDK, stdio) exposing `evidence_query`, started by
 * Decision Gate as a `type = "mcp"`, `protocol = "mcp"` provider. Its one check, `failed_tests`, reads a JSON
 * test report and answers `$.failed`, signed with Ed25519 the way the trust pipeline verifies it: the signature
 * covers the canonical JSON of the evidence hash `{"algorithm":"sha256","value":"<hex>"}` of the value.
 *
 *   provider.ts --report <report.json> --key <private.pem> --key-id <configured key path> [--tamper]
 *
 * `--tamper` flips one bit of the signature, standing in for evidence altered after signing.
 */
import { createPrivateKey, sign } from "node:crypto";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { z } from "zod";
import { hashCanonical } from "../../src/json/hash.js";
import { parseJson } from "../../src/json/parse.js";
import type { JsonObject, JsonValue } from "../../src/json/value.js";
import { canonicalJson, compactJson } from "../../src/json/write.js";

const { values } = parseArgs({
  options: {
    report: { type: "string" },
    key: { type: "string" },
    "key-id": { type: "string" },
    tamper: { type: "boolean", default: false },
  },
});
if (values.report === undefined || values.key === undefined || values["key-id"] === undefined) {
  throw new Error("usage: provider.ts --report <file> --key <pem> --key-id <id> [--tamper]");
}
const reportPath = values.report;
const keyId = values["key-id"];
const privateKey = createPrivateKey(readFileSync(values.key));

/** The evidence result for `value`, with its evidence hash and an Ed25519 signature over that hash. */
function signedEvidence(value: JsonValue): JsonObject {
  const evidenceHash = hashCanonical(value);
  const message = Buffer.from(canonicalJson(evidenceHash as unknown as JsonValue), "utf8");
  const signature = new Uint8Array(sign(null, message, privateKey));
  if (values.tamper) signature[0] = (signature[0] as number) ^ 1;
  return {
    value: { kind: "json", value },
    lane: "verified",
    error: null,
    evidence_hash: evidenceHash as unknown as JsonValue,
    evidence_ref: { uri: `file://${reportPath}` },
    evidence_anchor: null,
    signature: { scheme: "ed25519", key_id: keyId, signature },
    content_type: "application/json",
  };
}

const server = new McpServer({ name: "signed-evidence-provider", version: "1.0.0" });
server.registerTool(
  "evidence_query",
  {
    description: "Answers a Decision Gate evidence query with signed evidence.",
    inputSchema: { query: z.looseObject({ check_id: z.string() }), context: z.looseObject({}) },
  },
  async ({ query }) => {
    if (query.check_id !== "failed_tests") {
      return { isError: true, content: [{ type: "text", text: `unsupported check ${query.check_id}` }] };
    }
    // Read with the project's lossless parser, so the hashed value is exactly what Decision Gate will hash.
    const report = parseJson(readFileSync(reportPath, "utf8")) as JsonObject;
    const failed = report.failed ?? null;
    // Written by hand as lossless JSON text (integers stay exact; the signature is an array of bytes).
    return { content: [{ type: "text", text: compactJson(signedEvidence(failed)) }] };
  },
);
await server.connect(new StdioServerTransport());
