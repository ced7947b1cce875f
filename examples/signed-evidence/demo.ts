/**
 * Signed evidence: the gate only trusts evidence signed by a configured Ed25519 key.
 *
 *   npm run example:signed-evidence
 *
 * 1. Generates an Ed25519 key pair for the "CI system" (and a second, untrusted one), in a temp directory.
 * 2. Configures the real server with `[trust] default_policy = { require_signature = { keys = ["keys/ci.pub"] } }`
 *    and three external MCP providers (provider.ts) reading the same passing test report:
 *      - `ci_signed`   signs with the trusted key                 -> gate passes (complete)
 *      - `ci_tampered` signs with the trusted key, then a bit flips -> gate holds (signature verification failed)
 *      - `ci_rogue`    signs with an untrusted key, same key id    -> gate holds (signature verification failed)
 * 3. For each provider defines a scenario gated on `failed_tests == 0`, starts a run, calls scenario_next.
 *
 * Exits 0 when every outcome is the expected one (valid signature passes, bad signatures hold), 1 otherwise.
 */
import { generateKeyPairSync } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadPublicKey } from "../../src/evidence/trust/keys.js";
import type { JsonObject } from "../../src/json/value.js";
import { startServer, ToolError, tempConfigDir, tsxCommand } from "../shared/server.js";

const here = dirname(fileURLToPath(import.meta.url));
const PROVIDER = join(here, "provider.ts");
const REPORT = join(here, "report.json");
const KEY_ID = "keys/ci.pub"; // the configured path string is the key id signed evidence must name

const TENANT = 1n;
const NAMESPACE = 2n;
const logical = (value: number) => ({ kind: "logical", value: BigInt(value) });

/** Writes an Ed25519 key pair: `<name>.pem` (PKCS#8 private key) and `<name>.pub` (base64 of the raw 32 bytes). */
function writeKeyPair(dir: string, name: string): void {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  writeFileSync(join(dir, `${name}.pem`), privateKey.export({ format: "pem", type: "pkcs8" }));
  const raw = Buffer.from(publicKey.export({ format: "jwk" }).x as string, "base64url");
  writeFileSync(join(dir, `${name}.pub`), `${raw.toString("base64")}\n`);
}

/** A provider contract for `providerId` (its `provider_id` must equal the configured name). */
const contract = (providerId: string) => ({
  provider_id: providerId,
  name: "Signed CI report",
  description: "Failed-test count of a CI report, signed with Ed25519 by the CI system.",
  transport: "mcp",
  config_schema: { type: "object" },
  checks: [
    {
      check_id: "failed_tests",
      description: "The report's failed-test count, with an Ed25519 signature over its evidence hash.",
      determinism: "external",
      params_required: false,
      params_schema: { type: "object" },
      result_schema: { type: "integer" },
      allowed_comparators: ["equals"],
      anchor_types: [],
      content_types: ["application/json"],
      examples: [],
    },
  ],
  notes: [],
});

const PROVIDERS = [
  { name: "ci_signed", key: "keys/ci.pem", extra: [], expect: "complete" },
  { name: "ci_tampered", key: "keys/ci.pem", extra: ["--tamper"], expect: "hold" },
  { name: "ci_rogue", key: "keys/rogue.pem", extra: [], expect: "hold" },
] as const;

function setUp(dir: string): string {
  mkdirSync(join(dir, "keys"));
  mkdirSync(join(dir, "contracts"));
  writeKeyPair(join(dir, "keys"), "ci");
  writeKeyPair(join(dir, "keys"), "rogue");
  const providers = PROVIDERS.map((provider) => {
    writeFileSync(join(dir, "contracts", `${provider.name}.json`), JSON.stringify(contract(provider.name)));
    const command = [
      ...tsxCommand(PROVIDER),
      ...["--report", REPORT, "--key", join(dir, provider.key), "--key-id", KEY_ID],
      ...provider.extra,
    ];
    return `
[[providers]]
name = "${provider.name}"
type = "mcp"
protocol = "mcp"
command = ${JSON.stringify(command)}
capabilities_path = "contracts/${provider.name}.json"
max_retries = 0
`;
  });
  return `
[server]
transport = "http"
bind = "127.0.0.1:0"

[trust]
# Every provider's evidence must carry an Ed25519 signature by this key (strict verification).
default_policy = { require_signature = { keys = ["${KEY_ID}"] } }
min_lane = "verified"
${providers.join("")}`;
}

function scenario(provider: string) {
  return {
    scenario_id: `release-${provider}`,
    namespace_id: NAMESPACE,
    spec_version: "v1",
    default_tenant_id: null,
    policies: [],
    schemas: [],
    conditions: [
      {
        condition_id: "tests_green",
        query: { provider_id: provider, check_id: "failed_tests", params: {} },
        comparator: "equals",
        expected: 0n,
        policy_tags: [],
      },
    ],
    stages: [
      {
        stage_id: "release",
        entry_packets: [],
        gates: [{ gate_id: "signed_tests_green", requirement: { Condition: "tests_green" } }],
        advance_to: { kind: "terminal" },
        timeout: null,
        on_timeout: "fail",
      },
    ],
  };
}

async function main(): Promise<number> {
  const dir = tempConfigDir(setUp);
  const server = await startServer(dir);
  let allAsExpected = true;
  try {
    const key = await loadPublicKey(join(dir, KEY_ID)); // the project's own key loader, as the server uses it
    console.log(`trusted key ${KEY_ID}: ${Buffer.from(key).toString("hex")}`);
    for (const provider of PROVIDERS) {
      const spec = scenario(provider.name);
      const run = { run_id: `run-${provider.name}`, tenant_id: TENANT, namespace_id: NAMESPACE };
      await server.call("scenario_define", { spec });
      await server.call("scenario_start", {
        scenario_id: spec.scenario_id,
        run_config: { ...run, scenario_id: spec.scenario_id, dispatch_targets: [], policy_tags: [] },
        started_at: logical(1),
        issue_entry_packets: false,
      });
      const next = await server.call("scenario_next", {
        scenario_id: spec.scenario_id,
        request: { ...run, trigger_id: "t-1", agent_id: "ci", time: logical(2), correlation_id: null },
        feedback: "trace",
      });
      const kind = String(((next.decision as JsonObject).outcome as JsonObject).kind);
      // evidence_query shows why: the trust pipeline's verdict on this provider's answer.
      const evidence: JsonObject = await server
        .call("evidence_query", {
          query: { provider_id: provider.name, check_id: "failed_tests", params: {} },
          context: {
            tenant_id: TENANT,
            namespace_id: NAMESPACE,
            run_id: run.run_id,
            scenario_id: spec.scenario_id,
            stage_id: "release",
            trigger_id: "t-1",
            trigger_time: logical(2),
            correlation_id: null,
          },
        })
        .catch((error: unknown): JsonObject => ({ error: error instanceof ToolError ? error.error : String(error) }));
      const result = (evidence.result ?? evidence) as JsonObject;
      const error = result.error as JsonObject | null | undefined;
      const why = error ? `error: ${String(error.message)}` : "signature verified";
      const ok = kind === provider.expect;
      allAsExpected &&= ok;
      const verdict = kind === "complete" ? "RELEASE ALLOWED" : "RELEASE HELD";
      console.log(
        `${provider.name}: decision ${kind} -> ${verdict} (${why})${ok ? "" : ` UNEXPECTED, wanted ${provider.expect}`}`,
      );
    }
  } finally {
    await server.stop();
  }
  console.log(allAsExpected ? "all outcomes as expected" : "some outcomes were NOT as expected");
  return allAsExpected ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(2);
  },
);
