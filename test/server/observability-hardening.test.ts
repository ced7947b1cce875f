import { afterAll, describe, expect, it } from "vitest";
import { parseJson } from "../../src/json/parse.js";
import type { JsonObject, JsonValue } from "../../src/json/value.js";
import { compactJson } from "../../src/json/write.js";
import { toolDefinitions } from "../../src/server/tools/catalog.js";
import { PLANE_CACHE_SIZE } from "../../src/server/tools/scenario-runtimes.js";
import { RELEASE_GATE } from "../support/scenarios.js";
import { type ServerProcess, startServerProcess } from "../support/server-process.js";

/*
 * Attacks on what the server records about requests (issue 13): caller-chosen names must not grow metrics or
 * audit lines, must not reveal which tools exist before authentication, and an untrusted subject header must not
 * be recorded as the caller's subject.
 */

const TOKEN = "observability-token";
const servers: ServerProcess[] = [];

afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()));
});

async function serve(tables: string): Promise<ServerProcess> {
  const server = await startServerProcess(`[server]\ntransport = "http"\nbind = "127.0.0.1:0"\n${tables}`);
  servers.push(server);
  return server;
}

const BEARER = `[server.auth]\nmode = "bearer_token"\nbearer_tokens = ["${TOKEN}"]\n`;
/** Bearer auth with `scenario_status` hidden. */
const BEARER_HIDING = `${BEARER}[server.tools]\ndenylist = ["scenario_status"]\n`;

function rpc(server: ServerProcess, message: JsonValue, headers: Record<string, string> = {}) {
  return fetch(`${server.url}/rpc`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: compactJson(message),
  });
}

const toolCall = (name: string): JsonValue => ({
  jsonrpc: "2.0",
  id: 1n,
  method: "tools/call",
  params: { name, arguments: {} },
});
const bearer = { authorization: `Bearer ${TOKEN}` };

/** The audit lines the server wrote to standard error so far. */
function auditLines(server: ServerProcess): JsonObject[] {
  return server
    .stderr()
    .split("\n")
    .filter((line) => line.startsWith('{"event":'))
    .map((line) => parseJson(line) as JsonObject);
}

/** Waits for the audit line `matches` picks (standard error reaches the test asynchronously). */
async function auditLine(server: ServerProcess, matches: (line: JsonObject) => boolean): Promise<JsonObject> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const line = auditLines(server).find(matches);
    if (line !== undefined) return line;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no such audit line in:\n${server.stderr()}`);
}

/** A unique name of `length` characters starting with `tag`. */
const longName = (tag: string, length: number) => `${tag}-${"x".repeat(length - tag.length - 1)}`;

describe("metric labels and audit names are bounded (unauthenticated callers choose them)", () => {
  it(
    "unknown methods and tool names count as `other` and are audited as a short prefix",
    { timeout: 60_000 },
    async () => {
      const server = await serve(BEARER);
      const names = Array.from({ length: 10 }, (_, i) => longName(`attack-tool-${i}`, 100_000));
      const methods = Array.from({ length: 10 }, (_, i) => longName(`attack-method-${i}`, 100_000));
      for (const name of names) expect((await rpc(server, toolCall(name))).ok).toBe(false);
      for (const method of methods)
        expect((await rpc(server, { jsonrpc: "2.0", id: 1n, method, params: {} })).ok).toBe(false);
      const mcp = await fetch(`${server.url}/mcp`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
        body: compactJson({ jsonrpc: "2.0", id: 1n, method: longName("attack-mcp", 100_000), params: {} }),
      });
      expect(mcp.status).toBe(401);
      // Positive control: a known tool keeps its own label.
      expect((await rpc(server, toolCall("providers_list"), bearer)).status).toBe(200);

      const text = await (await fetch(`${server.url}/metrics`)).text();
      expect(text.length).toBeLessThan(64 * 1024);
      expect(text).not.toContain("attack-");
      const known = new Set(toolDefinitions().map((tool) => tool.name));
      const series = [...text.matchAll(/^decision_gate_requests_total\{([^}]*)\} (\S+)$/gm)].map(
        ([, labels, value]) => ({
          labels: Object.fromEntries([...(labels ?? "").matchAll(/(\w+)="([^"]*)"/g)].map(([, key, v]) => [key, v])),
          value: Number(value),
        }),
      );
      for (const { labels } of series) {
        expect(["tools/list", "tools/call", "resources/list", "resources/read", "invalid", "other"]).toContain(
          labels.method,
        );
        expect(labels.tool === "" || labels.tool === "other" || known.has(labels.tool ?? "")).toBe(true);
      }
      const count = (method: string, tool: string) =>
        series.find(({ labels }) => labels.method === method && labels.tool === tool)?.value;
      expect(count("tools/call", "other")).toBe(10);
      expect(count("other", "")).toBe(10);
      expect(count("tools/call", "providers_list")).toBe(1);

      const [name] = names as [string];
      const request = await auditLine(server, (line) => line.event === "mcp_request" && line.tool !== null);
      expect(request.tool).toBe(`${name.slice(0, 64)}…`);
      const denied = await auditLine(server, (line) => line.event === "mcp_tool_authz" && line.action !== "tools/call");
      expect(String(denied.action).length).toBeLessThanOrEqual(65);
      await auditLine(
        server,
        (line) => line.event === "mcp_tool_authz" && String(line.action).startsWith("attack-mcp"),
      );
      expect(server.stderr()).not.toContain("x".repeat(100));
      expect(server.stderr().length).toBeLessThan(64 * 1024);
    },
  );
});

describe("tools cannot be enumerated without credentials", () => {
  it("an unknown, a hidden and a known tool get the same refusal before authentication", async () => {
    const server = await serve(BEARER_HIDING);
    const answers = [];
    for (const name of ["providers_list", "scenario_status", "no_such_tool"]) {
      const response = await rpc(server, toolCall(name));
      answers.push({
        status: response.status,
        challenge: response.headers.get("www-authenticate"),
        body: await response.text(),
      });
    }
    expect(answers[0]?.status).toBe(401);
    expect(answers[0]?.body).toContain('"code":-32001');
    expect(answers[1]).toEqual(answers[0]);
    expect(answers[2]).toEqual(answers[0]);
  });

  it("an authenticated caller still gets the reference's `unknown tool` for unknown and hidden tools", async () => {
    const server = await serve(BEARER_HIDING);
    const known = await rpc(server, toolCall("providers_list"), bearer);
    expect(known.status).toBe(200);
    const bodies = [];
    for (const name of ["scenario_status", "no_such_tool"]) {
      const response = await rpc(server, toolCall(name), bearer);
      expect(response.status).toBe(400);
      bodies.push(parseJson(await response.text()) as JsonObject);
    }
    for (const body of bodies)
      expect(body.error).toEqual({
        code: -32601n,
        message: "unknown tool",
        data: { kind: "method_not_found", retryable: false, request_id: "1" },
      });
  });
});

describe("the audited client subject", () => {
  const subjectHeader = (subject: string, correlation: string) => ({
    "x-decision-gate-client-subject": subject,
    "x-correlation-id": correlation,
  });
  const requestLine = (server: ServerProcess, correlation: string) =>
    auditLine(server, (line) => line.event === "mcp_request" && line.unsafe_client_correlation_id === correlation);

  it("records a subject header the server does not rely on (bearer mode) only as untrusted and bounded", async () => {
    const server = await serve(BEARER);
    await rpc(server, toolCall("providers_list"), { ...bearer, ...subjectHeader("CN=admin", "spoof-1") });
    const line = await requestLine(server, "spoof-1");
    expect(line.client_subject).toBeNull();
    expect(line.client_subject_untrusted).toBe("CN=admin");

    const long = `CN=${"a".repeat(4000)}`;
    await rpc(server, toolCall("providers_list"), { ...bearer, ...subjectHeader(long, "spoof-2") });
    const bounded = await requestLine(server, "spoof-2");
    expect(bounded.client_subject).toBeNull();
    expect(bounded.client_subject_untrusted).toBe(`${long.slice(0, 256)}…`);
  });

  it("records the subject a TLS-terminating proxy vouches for in mTLS mode, as before", async () => {
    const server = await serve(
      `tls_termination = "upstream"\n[server.auth]\nmode = "mtls"\nmtls_subjects = ["CN=admin"]\n`,
    );
    const response = await rpc(server, toolCall("providers_list"), subjectHeader("CN=admin", "proxied-1"));
    expect(response.status).toBe(200);
    const line = await requestLine(server, "proxied-1");
    expect(line.client_subject).toBe("CN=admin");
    expect(line.client_subject_untrusted).toBeNull();
  });
});

describe("scenario control planes are a bounded cache", () => {
  it("a scenario whose plane was evicted still runs", { timeout: 120_000 }, async () => {
    const server = await serve('[[providers]]\nname = "time"\ntype = "builtin"\n');
    const call = async (name: string, args: JsonValue) => {
      const response = await rpc(server, {
        jsonrpc: "2.0",
        id: 1n,
        method: "tools/call",
        params: { name, arguments: args },
      });
      const body = parseJson(await response.text()) as JsonObject;
      expect(body.error).toBeUndefined();
      return body;
    };
    const spec = (id: string) => parseJson(RELEASE_GATE.replace('"release-gate"', `"${id}"`));
    await call("scenario_define", { spec: spec("first") });
    const others = Array.from({ length: PLANE_CACHE_SIZE + 1 }, (_, i) => `other-${i}`);
    for (let i = 0; i < others.length; i += 16)
      await Promise.all(others.slice(i, i + 16).map((id) => call("scenario_define", { spec: spec(id) })));

    const run = { run_id: "r", tenant_id: 1n, namespace_id: 2n };
    await call("scenario_start", {
      scenario_id: "first",
      run_config: { ...run, scenario_id: "first", dispatch_targets: [], policy_tags: [] },
      started_at: { kind: "logical", value: 1n },
      issue_entry_packets: false,
    });
    const next = await call("scenario_next", {
      scenario_id: "first",
      request: { ...run, trigger_id: "t-1", agent_id: "a", time: { kind: "logical", value: 10n } },
    });
    expect(compactJson(next)).toContain('"kind":"advance"');
  });
});
