import { spawn } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, describe, expect, it } from "vitest";
import { parseJson } from "../../src/json/parse.js";
import type { JsonObject } from "../../src/json/value.js";
import { CLI_COMMAND, configDir, runCli, startServerProcess } from "../support/server-process.js";
import { sharedPath } from "../support/shared.js";
import { startStdioSession } from "../support/stdio-session.js";

const REPO = new URL("../../", import.meta.url).pathname;
const cleanup: string[] = [];
afterAll(() => {
  for (const dir of cleanup) rmSync(dir, { recursive: true, force: true });
});

const frame = (body: string) => `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

/** Parses every Content-Length frame in `output`. */
function frames(output: string): JsonObject[] {
  const parsed: JsonObject[] = [];
  let rest = output;
  for (;;) {
    const match = /^Content-Length: (\d+)\r\n\r\n/.exec(rest);
    if (match === null) return parsed;
    const start = match[0].length;
    const length = Number(match[1]);
    parsed.push(parseJson(Buffer.from(rest.slice(start)).subarray(0, length).toString()) as JsonObject);
    rest = Buffer.from(rest.slice(start)).subarray(length).toString();
  }
}

describe("stdio", () => {
  it("answers a malformed frame with an error, keeps serving, and exits cleanly at end of input", async () => {
    const dir = configDir('[server]\ntransport = "stdio"\nmax_body_bytes = 200\n');
    cleanup.push(dir);
    const input = [
      frame('{"jsonrpc":"2.0","id":1,"method":"tools/list"}'),
      "Content-Type: nothing\r\n\r\n",
      frame("{broken"),
      frame(
        `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"providers_list","arguments":{"x":"${"y".repeat(300)}"}}}`,
      ),
      frame('{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"providers_list","arguments":{}}}'),
    ].join("");
    const result = await runCli(["serve", "--config", join(dir, "decision-gate.toml")], { input });
    expect(result.code).toBe(0);
    const responses = frames(result.stdout);
    expect(
      responses.map((response) => [response.id, (response.error as JsonObject | undefined)?.code ?? "ok"]),
    ).toEqual([
      [1n, "ok"],
      [null, -32600n],
      [null, -32600n],
      [null, -32070n],
      [3n, "ok"],
    ]);
  });

  it("after a frame whose body length is unknown, reads on from the next Content-Length header", async () => {
    const dir = configDir('[server]\ntransport = "stdio"\n');
    cleanup.push(dir);
    const list = (id: number) =>
      `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"providers_list","arguments":{}}}`;
    const input = [
      `Content-Length: -5\r\n\r\n${list(1)}`,
      frame(list(2)),
      `Content-Type: application/json\r\n\r\n${list(3)}`,
      frame(list(4)),
    ].join("");
    const result = await runCli(["serve", "--config", join(dir, "decision-gate.toml")], { input });
    expect(result.code).toBe(0);
    expect(
      frames(result.stdout).map((response) => [response.id, (response.error as JsonObject | undefined)?.code ?? "ok"]),
    ).toEqual([
      [null, -32600n],
      [2n, "ok"],
      [null, -32600n],
      [4n, "ok"],
    ]);
  });

  it("speaks standard MCP when the first byte is `{`", async () => {
    const dir = configDir('[server]\ntransport = "stdio"\n');
    cleanup.push(dir);
    const lines = [
      {
        jsonrpc: "2.0",
        id: 0,
        method: "initialize",
        params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "1" } },
      },
      { jsonrpc: "2.0", method: "notifications/initialized" },
      { jsonrpc: "2.0", id: 1, method: "ping" },
      { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "providers_list", arguments: {} } },
    ];
    const result = await runCli(["serve", "--config", join(dir, "decision-gate.toml")], {
      input: `${lines.map((line) => JSON.stringify(line)).join("\n")}\n`,
    });
    expect(result.code).toBe(0);
    const responses = result.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(responses.map((response) => response.id)).toEqual([0, 1, 2]);
    expect(responses[0].result.serverInfo.name).toBe("decision-gate");
    expect(responses[2].result.structuredContent).toEqual({ providers: [] });
  });

  it("reads MCP lines as bytes: a character split across reads stays whole, an oversized line is refused", async () => {
    const dir = configDir('[server]\ntransport = "stdio"\nmax_body_bytes = 200\n');
    cleanup.push(dir);
    const child = spawn(
      CLI_COMMAND.command,
      [...CLI_COMMAND.args, "serve", "--config", join(dir, "decision-gate.toml")],
      {
        stdio: ["pipe", "pipe", "pipe"],
      },
    );
    const exited = new Promise((resolve) => child.once("exit", resolve));
    const output = { stdout: "", stderr: "" };
    child.stdout.on("data", (chunk) => {
      output.stdout += chunk.toString();
    });
    child.stderr.on("data", (chunk) => {
      output.stderr += chunk.toString();
    });
    const until = async (ready: () => boolean) => {
      while (!ready()) await new Promise((resolve) => setTimeout(resolve, 20));
    };
    const lineCount = () => output.stdout.split("\n").length - 1;
    // Each piece is written only once the server is waiting for input, so it arrives as a read of its own.
    await until(() => output.stderr.includes("security posture"));
    const pause = () => new Promise((resolve) => setTimeout(resolve, 100));
    const ping = Buffer.from(`${JSON.stringify({ jsonrpc: "2.0", id: "café-☕", method: "ping" })}\n`);
    const split = ping.indexOf(Buffer.from("☕")) + 1;
    child.stdin.write(ping.subarray(0, split));
    await pause();
    child.stdin.write(ping.subarray(split));
    await until(() => lineCount() === 1);
    const oversized = JSON.stringify({ jsonrpc: "2.0", id: 2, method: "ping", params: { pad: "x".repeat(300) } });
    child.stdin.write(oversized.slice(0, 150));
    await pause();
    child.stdin.write(`${oversized.slice(150)}\n`);
    await until(() => lineCount() === 2);
    child.stdin.end(`${JSON.stringify({ jsonrpc: "2.0", id: 3, method: "ping" })}\n`);
    expect(await exited).toBe(0);
    expect(
      output.stdout
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line)),
    ).toEqual([
      { jsonrpc: "2.0", id: "café-☕", result: {} },
      { jsonrpc: "2.0", id: null, error: { code: -32070, message: "request body too large" } },
      { jsonrpc: "2.0", id: 3, result: {} },
    ]);
  });

  it("answers an MCP message the SDK rejects with a JSON-RPC error for its id and keeps the session", async () => {
    const dir = configDir('[server]\ntransport = "stdio"\n');
    cleanup.push(dir);
    const session = startStdioSession(dir, "ndjson");
    // An extra envelope member makes the SDK reject the message; the integer arguments once crashed the server.
    session.write(
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"scenarios_list","arguments":{"tenant_id":1,"namespace_id":2}},"x":1}\n',
    );
    expect(await session.next()).toEqual({
      jsonrpc: "2.0",
      id: 1n,
      error: { code: -32600n, message: 'invalid request: Unrecognized key: "x"' },
    });
    // JSON-RPC forbids answering a notification, even an invalid one; a wrong-typed id is answered for no id.
    session.write('{"jsonrpc":"2.0","method":"notifications/initialized","params":7}\n');
    session.write('{"jsonrpc":"2.0","id":[1],"method":"ping"}\n');
    expect(await session.next()).toMatchObject({ id: null, error: { code: -32600n } });
    session.write('{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"providers_list","arguments":{}}}\n');
    expect(await session.next()).toMatchObject({ id: 2n, result: { structuredContent: { providers: [] } } });
    expect(await session.end()).toBe(0);
  });
});

describe("presets", () => {
  const rewrite = (text: string, dir: string) =>
    text
      .replaceAll(/bind = "[^"]+"/g, (bind) =>
        bind.includes("0.0.0.0") ? 'bind = "0.0.0.0:0"' : 'bind = "127.0.0.1:0"',
      )
      .replaceAll("/var/lib/decision-gate", join(dir, "var"));
  const presets = [
    ...readdirSync(join(REPO, "presets")).map((file) => ["ours", join(REPO, "presets", file)] as const),
    ...readdirSync(sharedPath("fixtures/reference/presets")).map(
      (file) => ["reference", sharedPath(`fixtures/reference/presets/${file}`)] as const,
    ),
  ];
  for (const [origin, path] of presets) {
    it(`${origin} ${path.split("/").at(-1)} starts and serves`, { timeout: 30_000 }, async () => {
      const text = readFileSync(path, "utf8");
      const token = /bearer_tokens = \["([^"]+)"\]/.exec(text)?.[1] ?? null;
      const varDir = configDir("");
      cleanup.push(varDir);
      const server = await startServerProcess(
        rewrite(text, varDir),
        text.includes("0.0.0.0") ? ["--allow-non-loopback"] : [],
        (dir) => mkdirSync(join(dir, "evidence")),
      );
      try {
        const url = server.url.replace("0.0.0.0", "127.0.0.1").replace("[::]", "127.0.0.1");
        expect(await (await fetch(`${url}/readyz`)).json()).toEqual({ status: "ready" });
        const response = await fetch(`${url}/rpc`, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            ...(token === null ? {} : { authorization: `Bearer ${token}` }),
          },
          body: '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"providers_list","arguments":{}}}',
        });
        expect(response.status).toBe(200);
        const providers = (
          ((await response.json()) as JsonObject).result as { content: [{ json: { providers: unknown[] } }] }
        ).content[0].json.providers;
        expect(providers).toHaveLength(4);
      } finally {
        await server.stop();
      }
    });
  }

  it("refuses a non-loopback bind without the opt-in, with the reference's message", async () => {
    const text = readFileSync(sharedPath("fixtures/reference/presets/container-prod.toml"), "utf8");
    const dir = configDir(text);
    cleanup.push(dir);
    mkdirSync(join(dir, "evidence"));
    const result = await runCli(["serve", "--config", join(dir, "decision-gate.toml")], { cwd: dir });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      "Refusing to bind to non-loopback address 0.0.0.0:8080. Set --allow-non-loopback or DECISION_GATE_ALLOW_NON_LOOPBACK=1 to opt in.",
    );
  });
});

describe("the CLI", () => {
  it("prints its version, validates configs and prints the config JSON Schema", async () => {
    expect(await runCli(["--version"])).toMatchObject({ code: 0, stdout: "decision-gate 0.1.0\n" });
    const dir = configDir('[server]\ntransport = "http"\nbind = "127.0.0.1:4000"\n');
    cleanup.push(dir);
    expect(await runCli(["config", "validate", "--config", join(dir, "decision-gate.toml")])).toMatchObject({
      code: 0,
      stdout: "Config valid.\n",
    });
    const bad = configDir('[server]\ntransport = "http"\n');
    cleanup.push(bad);
    const refused = await runCli(["config", "validate", "--config", join(bad, "decision-gate.toml")]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("Failed to load config: invalid config:");
    expect(refused.stderr).toContain("http/sse transport requires bind address");
    const schema = await runCli(["config", "schema"]);
    expect(JSON.parse(schema.stdout).$schema).toBe("https://json-schema.org/draft/2020-12/schema");
    expect((await runCli(["config", "validate", "--no-such-flag"])).code).toBe(2);
  });

  it("verifies a runpack (exit 0) and a tampered one (exit 1)", async () => {
    const golden = sharedPath("fixtures/reference/runpacks/backcompat/v1/manifest.json");
    const ok = await runCli(["runpack", "verify", "--manifest", golden]);
    expect(ok).toMatchObject({ code: 0, stdout: '{"checked_files":8,"errors":[],"status":"pass"}\n' });
    const markdown = await runCli(["runpack", "verify", "--manifest", golden, "--format", "markdown"]);
    expect(markdown.stdout).toContain("- Status: pass");
  });

  it("calls tools on a running server over both dialects", async () => {
    const server = await startServerProcess(
      '[server]\ntransport = "http"\nbind = "127.0.0.1:0"\n[[providers]]\nname = "env"\ntype = "builtin"\n',
    );
    try {
      for (const [transport, path] of [
        ["http", "/rpc"],
        ["mcp-http", "/mcp"],
      ] as const) {
        const result = await runCli([
          "mcp",
          "tools",
          "call",
          "--transport",
          transport,
          "--endpoint",
          `${server.url}${path}`,
          "--tool",
          "providers_list",
        ]);
        expect(result).toMatchObject({
          code: 0,
          stdout: '{"providers":[{"checks":["get"],"provider_id":"env","transport":"builtin"}]}\n',
        });
      }
      const failed = await runCli(["mcp", "tools", "call", "--endpoint", `${server.url}/rpc`, "--tool", "nope"]);
      expect(failed.code).toBe(1);
      expect(failed.stderr).toContain("MCP request failed");
    } finally {
      await server.stop();
    }
  });
});

describe("standard MCP details", () => {
  it("lists tools with input and output schemas and annotations, and reports tool failures as isError results", async () => {
    const server = await startServerProcess('[server]\ntransport = "http"\nbind = "127.0.0.1:0"\n');
    const client = new Client({ name: "test", version: "1.0.0" });
    try {
      await client.connect(new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`)));
      const { tools } = await client.listTools();
      const define = tools.find((tool) => tool.name === "scenario_define");
      expect(define?.inputSchema.$defs).toHaveProperty("ScenarioSpec");
      expect(define?.annotations).toMatchObject({ idempotentHint: true, readOnlyHint: false });
      expect(tools.find((tool) => tool.name === "scenario_status")?.annotations?.readOnlyHint).toBe(true);
      expect(tools.every((tool) => tool.outputSchema !== undefined)).toBe(true);
      const failure = await client.callTool({ name: "scenario_define", arguments: {} });
      expect(failure.isError).toBe(true);
      expect(JSON.parse((failure.content as Array<{ text: string }>)[0]?.text ?? "")).toMatchObject({
        code: -32602,
        kind: "invalid_params",
      });
    } finally {
      await client.close();
      await server.stop();
    }
  });
});

describe("graceful shutdown", () => {
  it("finishes an in-flight request on SIGTERM, then exits 0", async () => {
    const server = await startServerProcess(`
[server]
transport = "http"
bind = "127.0.0.1:0"
[[providers]]
name = "slow"
type = "mcp"
command = ["${CLI_COMMAND.command}", "${join(REPO, "test/fixtures/providers/reference-provider.mjs")}"]
capabilities_path = "${join(REPO, "test/fixtures/providers/slow-contract.json")}"
`);
    const pending = fetch(`${server.url}/rpc`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "tools/call",
        params: {
          name: "evidence_query",
          arguments: {
            query: { provider_id: "slow", check_id: "query", params: { mode: "slow", delay_ms: 800 } },
            context: {
              tenant_id: 5,
              namespace_id: 5,
              run_id: "r",
              scenario_id: "s",
              stage_id: "a",
              trigger_id: "t",
              trigger_time: { kind: "logical", value: 1 },
            },
          },
        },
      }),
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const exit = server.stop("SIGTERM");
    const response = await pending;
    expect(response.status).toBe(200);
    expect(await exit).toBe(0);
  });
});
