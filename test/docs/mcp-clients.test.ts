import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, describe, expect, it } from "vitest";
import { presetsDirectory } from "../../src/config/presets.js";
import { CLI_COMMAND, startServerProcess } from "../support/server-process.js";

const GUIDE = readFileSync(new URL("../../docs/MCP_CLIENTS.md", import.meta.url), "utf8");
/** The placeholders the guide uses for the checkout and for the stdio configuration file it shows. */
const CHECKOUT = "/path/to/decision-gate";
const STDIO_CONFIG = "/path/to/stdio.toml";

/** The files the guide shows, by name (`<!-- file: name -->` before a fenced block). */
function guideFiles(): Map<string, string> {
  const files = new Map<string, string>();
  for (const match of GUIDE.matchAll(/<!-- file: (\S+) -->\n```\w+\n([\s\S]*?)```/g)) {
    files.set(match[1] as string, match[2] as string);
  }
  return files;
}

interface ServerEntry {
  command: string;
  args: string[];
  env?: Record<string, string>;
}

const temporary: string[] = [];
const tempDir = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  temporary.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of temporary) rmSync(dir, { recursive: true, force: true });
});

/** The provider ids of a `providers_list` result, from its `structuredContent`. */
const providerIds = (result: Record<string, unknown>) =>
  (result.structuredContent as { providers: Array<{ provider_id: string }> }).providers.map((p) => p.provider_id);

describe("docs/MCP_CLIENTS.md", () => {
  const files = guideFiles();

  it("shows the stdio configuration and the Claude Desktop entry", () => {
    expect([...files.keys()]).toEqual(["stdio.toml", "claude_desktop_config.json"]);
  });

  it.concurrent(
    "starts the server exactly as the Claude Desktop entry says, through the SDK stdio client",
    async ({ expect }) => {
      const configDir = tempDir("dg-mcp-clients-config-");
      const configPath = join(configDir, "stdio.toml");
      writeFileSync(configPath, files.get("stdio.toml") as string);
      mkdirSync(join(configDir, "evidence")); // "create an `evidence` directory next to it"

      const desktop = JSON.parse(files.get("claude_desktop_config.json") as string);
      const entry = desktop.mcpServers["decision-gate"] as ServerEntry;
      // `npx --prefix <checkout> decision-gate` is the checkout's CLI: run it from source, as CLI_COMMAND does.
      expect(entry.command).toBe("npx");
      expect(entry.args.slice(0, 3)).toEqual(["--prefix", CHECKOUT, "decision-gate"]);
      const cliArgs = entry.args.slice(3);
      expect(cliArgs.filter((arg) => arg === STDIO_CONFIG)).toHaveLength(1);

      // The client picks the working directory, not the guide: use one unrelated to the configuration.
      const elsewhere = tempDir("dg-mcp-clients-cwd-");
      const transport = new StdioClientTransport({
        command: CLI_COMMAND.command,
        args: [...CLI_COMMAND.args, ...cliArgs.map((arg) => (arg === STDIO_CONFIG ? configPath : arg))],
        env: entry.env,
        cwd: elsewhere,
        stderr: "pipe",
      });
      let stderr = "";
      transport.stderr?.on("data", (chunk) => {
        stderr += chunk.toString();
      });
      const client = new Client({ name: "docs-test", version: "1.0.0" });
      try {
        await client.connect(transport);
        const { tools } = await client.listTools();
        expect(tools.map((tool) => tool.name)).toEqual(
          expect.arrayContaining(["scenario_define", "scenario_next", "providers_list", "runtime_action_evaluate"]),
        );

        const result = await client.callTool({ name: "providers_list", arguments: {} });
        expect(result.isError).toBeFalsy();
        expect(providerIds(result)).toEqual(["env", "http", "json", "time"]);

        const { resources } = await client.listResources();
        expect(resources.map((resource) => resource.uri)).toEqual(
          expect.arrayContaining(["decision-gate://docs/mcp-clients", "decision-gate://docs/presets"]),
        );
      } finally {
        await client.close();
      }
      // Logs went to standard error (stdout is the protocol), and the state landed next to the configuration.
      expect(stderr).toContain("security posture: transport=stdio");
      expect(existsSync(join(configDir, ".decision-gate", "runstate.db"))).toBe(true);
      expect(existsSync(join(elsewhere, ".decision-gate"))).toBe(false);
    },
  );

  it.concurrent(
    "behaves over Streamable HTTP with bearer tokens as the troubleshooting table says",
    async ({ expect }) => {
      const hardened = readFileSync(join(presetsDirectory(), "hardened.toml"), "utf8").replace(
        'bind = "127.0.0.1:4000"',
        'bind = "127.0.0.1:0"',
      );
      const server = await startServerProcess(hardened, [], (dir) => mkdirSync(join(dir, "evidence")));
      const mcpUrl = new URL(`${server.url}/mcp`);
      const connect = async (headers?: Record<string, string>) => {
        const client = new Client({ name: "docs-test", version: "1.0.0" });
        await client.connect(new StreamableHTTPClientTransport(mcpUrl, { requestInit: { headers } }));
        return client;
      };
      try {
        expect(GUIDE).toContain("406 Not Acceptable: Client must accept both application/json and text/event-stream");
        const notAcceptable = await fetch(mcpUrl, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: "Bearer dg-hardened-demo-token" },
          body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
        });
        expect(notAcceptable.status).toBe(406);
        expect(await notAcceptable.text()).toContain("Client must accept both application/json and text/event-stream");

        const rpc = await fetch(`${server.url}/rpc`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
        });
        expect(rpc.status).toBe(401);
        expect(rpc.headers.get("www-authenticate")).toContain("Bearer");

        expect(GUIDE).toContain("on `/mcp` every request, `initialize` included, needs the token");
        await expect(connect()).rejects.toMatchObject({ code: 401 });
        expect(server.stderr()).toContain("unauthenticated: missing bearer token");

        const authorized = await connect({ Authorization: "Bearer dg-hardened-demo-token" });
        try {
          expect((await authorized.listTools()).tools.length).toBeGreaterThan(0);
          expect(providerIds(await authorized.callTool({ name: "providers_list", arguments: {} }))).toEqual([
            "env",
            "http",
            "json",
            "time",
          ]);
        } finally {
          await authorized.close();
        }
      } finally {
        await server.stop();
      }
    },
  );
});
