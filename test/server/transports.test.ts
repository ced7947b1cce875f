import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createMcpClient, type McpClient, type McpClientOptions } from "../../src/cli/client.js";
import { parseJson } from "../../src/json/parse.js";
import type { JsonObject } from "../../src/json/value.js";
import { CLI_COMMAND, configDir, type ServerProcess, startServerProcess } from "../support/server-process.js";
import { sharedPath } from "../support/shared.js";

/**
 * A server on SQLite files of its own (absolute paths, whatever the working directory) under the reference's
 * default evidence policy (no `[evidence]` table: `allow_raw_values = false`, `require_provider_opt_in = true`).
 */
const config = (transport: string) => {
  const state = mkdtempSync(join(tmpdir(), "dg-transport-state-"));
  stateDirs.push(state);
  return `
[server]
transport = "${transport}"
${transport === "stdio" ? "" : 'bind = "127.0.0.1:0"'}

[namespace]
allow_default = true
default_tenants = [1]

[run_state_store]
type = "sqlite"
path = "${join(state, "runs.db")}"

[schema_registry]
type = "sqlite"
path = "${join(state, "registry.db")}"

[[providers]]
name = "time"
type = "builtin"
`;
};

interface Golden {
  name: string;
  scenarioId: string;
  runId: string;
  issueEntryPackets: boolean;
}

/** The golden runpacks and the inputs that produced them (fixtures README). */
const GOLDENS: Golden[] = [
  { name: "golden_time_after_pass", scenarioId: "golden-time-after", runId: "run-1", issueEntryPackets: false },
  { name: "golden_visibility_packet", scenarioId: "golden-visibility", runId: "run-2", issueEntryPackets: true },
];
const goldenDir = (golden: Golden) => sharedPath(`fixtures/reference/runpacks/golden/${golden.name}`);
const goldenJson = (golden: Golden, file: string) => parseJson(readFileSync(join(goldenDir(golden), file), "utf8"));
const outputs = mkdtempSync(join(tmpdir(), "dg-transport-runpacks-"));
const servers: ServerProcess[] = [];
const configDirs: string[] = [];
const stateDirs: string[] = [];

afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()));
  for (const dir of [outputs, ...configDirs, ...stateDirs]) rmSync(dir, { recursive: true, force: true });
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

const logical = (value: number): JsonObject => ({ kind: "logical", value: BigInt(value) });

/** A golden run's flow (fixtures README): define, start, one trigger, export, verify. */
async function goldenFlow(client: McpClient, golden: Golden, outputDir: string) {
  const { scenarioId, runId } = golden;
  const spec = goldenJson(golden, "artifacts/scenario_spec.json");
  const defined = (await client.callTool("scenario_define", { spec })) as JsonObject;
  const started = (await client.callTool("scenario_start", {
    scenario_id: scenarioId,
    run_config: {
      tenant_id: 1n,
      namespace_id: 1n,
      run_id: runId,
      scenario_id: scenarioId,
      dispatch_targets: [],
      policy_tags: [],
    },
    started_at: logical(1),
    issue_entry_packets: golden.issueEntryPackets,
  })) as JsonObject;
  const triggered = (await client.callTool("scenario_trigger", {
    scenario_id: scenarioId,
    trigger: {
      trigger_id: "trigger-1",
      tenant_id: 1n,
      namespace_id: 1n,
      run_id: runId,
      kind: "external_event",
      time: logical(2),
      source_id: "system-tests",
      payload: null,
      correlation_id: null,
    },
  })) as JsonObject;
  const exported = (await client.callTool("runpack_export", {
    scenario_id: scenarioId,
    tenant_id: 1n,
    namespace_id: 1n,
    run_id: runId,
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

describe("every dialect and transport reaches the same decisions and the reference's golden runpacks", () => {
  const roots = new Map<string, Map<string, string>>(GOLDENS.map((golden) => [golden.name, new Map()]));
  for (const [name, options] of transports) {
    it(name, { timeout: 60_000 }, async () => {
      const client = createMcpClient(await options());
      try {
        for (const golden of GOLDENS) {
          const expected = goldenDir(golden);
          const manifest = goldenJson(golden, "manifest.json") as JsonObject;
          const outputDir = join(outputs, name.replaceAll(/\W+/g, "-"), golden.name);
          const flow = await goldenFlow(client, golden, outputDir);
          expect(flow.defined.spec_hash, golden.name).toEqual(manifest.spec_hash);
          expect(flow.started.status).toBe("active");
          expect((flow.triggered.decision as JsonObject).outcome).toEqual({ kind: "complete", stage_id: "stage-1" });
          expect(flow.triggered.status).toBe("completed");
          expect(flow.exported.report).toEqual({ checked_files: 7n, errors: [], status: "pass" });
          expect(flow.verified).toEqual({ report: { checked_files: 8n, errors: [], status: "pass" }, status: "pass" });
          expect(filesUnder(outputDir)).toEqual(filesUnder(expected));
          for (const file of filesUnder(expected)) {
            expect(readFileSync(join(outputDir, file), "utf8"), `${golden.name}/${file}`).toBe(
              readFileSync(join(expected, file), "utf8"),
            );
          }
          const root = ((flow.exported.manifest as JsonObject).integrity as JsonObject).root_hash as JsonObject;
          roots.get(golden.name)?.set(name, JSON.stringify(root));
        }
      } finally {
        await client.close();
      }
    });
  }

  it("and all of them agree on each run's root hash, which is the reference's", () => {
    for (const golden of GOLDENS) {
      const byTransport = roots.get(golden.name) ?? new Map<string, string>();
      expect(byTransport.size, golden.name).toBe(transports.length);
      const integrity = (goldenJson(golden, "manifest.json") as JsonObject).integrity as JsonObject;
      expect(new Set(byTransport.values()), golden.name).toEqual(new Set([JSON.stringify(integrity.root_hash)]));
    }
  });
});
