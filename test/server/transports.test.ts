import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createMcpClient, type McpClient, type McpClientOptions } from "../../src/cli/client.js";
import { parseJson } from "../../src/json/parse.js";
import type { JsonObject, JsonValue } from "../../src/json/value.js";
import { CLI_COMMAND, configDir, type ServerProcess, startServerProcess } from "../support/server-process.js";
import { sharedPath } from "../support/shared.js";

/** A server that keeps raw time values (as the reference's golden runs did) on SQLite files. */
const config = (transport: string) => `
[server]
transport = "${transport}"
${transport === "stdio" ? "" : 'bind = "127.0.0.1:0"'}

[namespace]
allow_default = true
default_tenants = [1]

[evidence]
allow_raw_values = true
require_provider_opt_in = false

[run_state_store]
type = "sqlite"
path = "state/runs.db"

[schema_registry]
type = "sqlite"
path = "state/registry.db"

[[providers]]
name = "time"
type = "builtin"
`;

const GOLDEN = sharedPath("fixtures/reference/runpacks/golden/golden_time_after_pass");
const outputs = mkdtempSync(join(tmpdir(), "dg-transport-runpacks-"));
const servers: ServerProcess[] = [];
const configDirs: string[] = [];

afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()));
  for (const dir of [outputs, ...configDirs]) rmSync(dir, { recursive: true, force: true });
});

async function httpServer(transport: "http" | "sse"): Promise<ServerProcess> {
  const server = await startServerProcess(config(transport));
  servers.push(server);
  return server;
}

function stdioOptions(transport: "stdio" | "mcp-stdio"): McpClientOptions {
  const dir = configDir(config("stdio"));
  configDirs.push(dir);
  return {
    transport,
    stdioCommand: CLI_COMMAND.command,
    stdioArgs: [...CLI_COMMAND.args, "serve", "--config", join(dir, "decision-gate.toml")],
    timeoutMs: 20_000,
  };
}

const spec = parseJson(readFileSync(join(GOLDEN, "artifacts/scenario_spec.json"), "utf8"));
const logical = (value: number): JsonObject => ({ kind: "logical", value: BigInt(value) });

/** The golden_time_after_pass flow (fixtures README): define, start, one trigger, status, export, verify. */
async function goldenFlow(client: McpClient, outputDir: string) {
  const defined = (await client.callTool("scenario_define", { spec })) as JsonObject;
  const started = (await client.callTool("scenario_start", {
    scenario_id: "golden-time-after",
    run_config: {
      tenant_id: 1n,
      namespace_id: 1n,
      run_id: "run-1",
      scenario_id: "golden-time-after",
      dispatch_targets: [],
      policy_tags: [],
    },
    started_at: logical(1),
    issue_entry_packets: false,
  })) as JsonObject;
  const triggered = (await client.callTool("scenario_trigger", {
    scenario_id: "golden-time-after",
    trigger: {
      trigger_id: "trigger-1",
      tenant_id: 1n,
      namespace_id: 1n,
      run_id: "run-1",
      kind: "external_event",
      time: logical(2),
      source_id: "system-tests",
      payload: null,
      correlation_id: null,
    },
  })) as JsonObject;
  const exported = (await client.callTool("runpack_export", {
    scenario_id: "golden-time-after",
    tenant_id: 1n,
    namespace_id: 1n,
    run_id: "run-1",
    output_dir: outputDir,
    generated_at: logical(10),
    include_verification: true,
  })) as JsonObject;
  const verified = (await client.callTool("runpack_verify", {
    runpack_dir: outputDir,
    manifest_path: "manifest.json",
  })) as JsonObject;
  return { defined, started, triggered, exported, verified };
}

function filesUnder(root: string): string[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(root, join(entry.parentPath, entry.name)))
    .sort();
}

const transports: Array<[string, () => Promise<McpClientOptions>]> = [
  [
    "Decision Gate dialect over HTTP /rpc",
    async () => ({ transport: "http", endpoint: `${(await httpServer("http")).url}/rpc` }),
  ],
  [
    "Decision Gate dialect over SSE",
    async () => ({ transport: "sse", endpoint: `${(await httpServer("sse")).url}/rpc` }),
  ],
  ["Decision Gate dialect over stdio (Content-Length frames)", async () => stdioOptions("stdio")],
  [
    "standard MCP over Streamable HTTP /mcp (SDK Client)",
    async () => ({ transport: "mcp-http", endpoint: `${(await httpServer("http")).url}/mcp` }),
  ],
  ["standard MCP over stdio (SDK Client)", async () => stdioOptions("mcp-stdio")],
];

describe("every dialect and transport reaches the same decision and the reference's golden runpack", () => {
  const roots = new Map<string, JsonValue>();
  for (const [name, options] of transports) {
    it(name, { timeout: 60_000 }, async () => {
      const outputDir = join(outputs, name.replaceAll(/\W+/g, "-"));
      const client = createMcpClient(await options());
      try {
        const flow = await goldenFlow(client, outputDir);
        expect(flow.defined.spec_hash).toEqual({
          algorithm: "sha256",
          value: "5e2f158f4b4192a29986215a340c3f50f64166da28b210d23b4892a417f694e8",
        });
        expect((flow.triggered.decision as JsonObject).outcome).toEqual({ kind: "complete", stage_id: "stage-1" });
        expect(flow.triggered.status).toBe("completed");
        expect(flow.exported.report).toEqual({ checked_files: 7n, errors: [], status: "pass" });
        expect(flow.verified).toEqual({ report: { checked_files: 8n, errors: [], status: "pass" }, status: "pass" });
        expect(filesUnder(outputDir)).toEqual(filesUnder(GOLDEN));
        for (const file of filesUnder(GOLDEN)) {
          expect(readFileSync(join(outputDir, file), "utf8"), file).toBe(readFileSync(join(GOLDEN, file), "utf8"));
        }
        roots.set(name, ((flow.exported.manifest as JsonObject).integrity as JsonObject).root_hash ?? null);
      } finally {
        await client.close();
      }
    });
  }

  it("and all of them agree on the root hash", () => {
    expect(new Set([...roots.values()].map((root) => JSON.stringify(root))).size).toBe(1);
    expect(roots.size).toBe(transports.length);
  });
});
