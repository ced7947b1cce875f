import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import type { EvidenceResult } from "../../src/core/run/schema.js";
import type { EvidenceQuery } from "../../src/core/spec/schema.js";
import { McpProviderSettings, type McpProviderSettingsInput } from "../../src/evidence/mcp/config.js";
import { sanitizeCorrelationId } from "../../src/evidence/mcp/correlation.js";
import { createMcpProvider } from "../../src/evidence/mcp/provider.js";
import { type EvidenceContext, type EvidenceProvider, EvidenceProviderFailure } from "../../src/evidence/provider.js";
import { parseJson } from "../../src/json/parse.js";
import { isJsonObject, type JsonObject, type JsonValue, U64_MAX } from "../../src/json/value.js";
import { compactJson } from "../../src/json/write.js";

const FIXTURES = fileURLToPath(new URL("../fixtures/providers/", import.meta.url));
const REFERENCE_PROVIDER = [process.execPath, `${FIXTURES}reference-provider.mjs`];
const STANDARD_PROVIDER = [process.execPath, `${FIXTURES}standard-mcp-provider.mjs`];
const TOKEN = "s3cret-token-value";

const CONTEXT: EvidenceContext = {
  tenant_id: U64_MAX,
  namespace_id: 9_007_199_254_740_993n,
  run_id: "run-1",
  scenario_id: "scenario-1",
  stage_id: "stage-1",
  trigger_id: "trigger-1",
  trigger_time: { kind: "unix_millis", value: 1_700_000_000_123n },
  correlation_id: null,
};

/** The context as it must arrive at the provider: every field, in the reference's order. */
const CONTEXT_JSON: JsonObject = {
  tenant_id: CONTEXT.tenant_id,
  namespace_id: CONTEXT.namespace_id,
  run_id: "run-1",
  scenario_id: "scenario-1",
  stage_id: "stage-1",
  trigger_id: "trigger-1",
  trigger_time: { kind: "unix_millis", value: 1_700_000_000_123n },
  correlation_id: null,
};

/** The SDK-based fixture reads JSON with JSON.parse, so it only echoes contexts with safe integers exactly. */
const SMALL_CONTEXT: EvidenceContext = { ...CONTEXT, tenant_id: 7n, namespace_id: 3n };

const cleanups: Array<() => Promise<unknown>> = [];

afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

function provider(input: McpProviderSettingsInput): EvidenceProvider {
  const created = createMcpProvider("ext", McpProviderSettings.parse(input));
  cleanups.push(async () => created.close?.());
  return created;
}

function stdioProvider(command: string[], input: McpProviderSettingsInput = {}): EvidenceProvider {
  return provider({ command, max_retries: 0n, ...input });
}

function query(mode: string, extra: JsonObject = {}): EvidenceQuery {
  return { provider_id: "ext", check_id: "probe", params: { mode, ...extra } };
}

async function failureOf(promise: Promise<unknown>): Promise<EvidenceProviderFailure> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(EvidenceProviderFailure);
  return error as EvidenceProviderFailure;
}

async function expectFailure(promise: Promise<unknown>, reason: string): Promise<void> {
  expect((await failureOf(promise)).message).toBe(`evidence provider error: ${reason}`);
}

function jsonValueOf(result: EvidenceResult): JsonObject {
  expect(result.value?.kind).toBe("json");
  const value = result.value?.value;
  if (!isJsonObject(value)) throw new Error("expected an object value");
  return value;
}

/** What the reference fixture received, parsed losslessly from the raw text it echoed. */
function echoedRequest(result: EvidenceResult): JsonObject {
  const raw = jsonValueOf(result).request;
  if (typeof raw !== "string") throw new Error("expected the echoed request text");
  return parseJson(raw) as JsonObject;
}

function field(value: JsonValue | undefined, ...path: string[]): JsonValue | undefined {
  let current = value;
  for (const key of path) current = isJsonObject(current) ? current[key] : undefined;
  return current;
}

// ---------------------------------------------------------------------------------------------------------------
// Local HTTP servers

interface Received {
  headers: IncomingHttpHeaders;
  body: JsonObject;
}

type Handler = (request: Received, response: ServerResponse, index: number) => void;

interface LocalServer {
  url: string;
  received: Received[];
}

async function startServer(handler: Handler): Promise<LocalServer> {
  const received: Received[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const entry = { headers: request.headers, body: parseJson(Buffer.concat(chunks).toString("utf8")) as JsonObject };
      received.push(entry);
      handler(entry, response, received.length - 1);
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  cleanups.push(async () => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/rpc`, received };
}

function httpProvider(server: LocalServer, input: McpProviderSettingsInput = {}): EvidenceProvider {
  return provider({ url: server.url, allow_insecure_http: true, max_retries: 0n, retry_backoff_ms: 0n, ...input });
}

function rpcResponse(request: Received, fields: JsonObject): string {
  return compactJson({ jsonrpc: "2.0", id: request.body.id, ...fields });
}

function evidenceResponse(request: Received, value: JsonValue): string {
  const json: JsonObject = { value: { kind: "json", value }, lane: "verified" };
  return rpcResponse(request, { result: { content: [{ type: "json", json }] } });
}

/** The reference protocol over HTTP: echoes the request and the headers that matter. */
const echoHandler: Handler = (request, response) => {
  const headers: JsonObject = {};
  for (const name of ["authorization", "x-correlation-id", "content-type", "accept"]) {
    headers[name] = request.headers[name] ?? null;
  }
  response.setHeader("content-type", "application/json");
  response.end(evidenceResponse(request, { big: U64_MAX, headers, request: request.body }));
};

/** Starts the SDK fixture in Streamable HTTP mode and returns its URL. */
async function startStandardHttpProvider(): Promise<string> {
  const [node = "", script = ""] = STANDARD_PROVIDER;
  const child: ChildProcess = spawn(node, [script, "--http", "0"], { stdio: ["ignore", "pipe", "ignore"] });
  cleanups.push(async () => {
    child.kill("SIGKILL");
    if (child.exitCode === null && child.signalCode === null) await once(child, "close");
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const [line] = (await once(lines, "line")) as [string];
  lines.close();
  const { port } = JSON.parse(line) as { port: number };
  return `http://127.0.0.1:${port}/mcp`;
}

// ---------------------------------------------------------------------------------------------------------------

describe("success over stdio and HTTP, for both protocols", () => {
  it("stdio + decision_gate: sends the reference request and keeps integers exact", async () => {
    const client = stdioProvider(REFERENCE_PROVIDER);
    const result = await client.query(query("ok"), CONTEXT);

    expect(jsonValueOf(result).big).toBe(U64_MAX);
    expect(result).toMatchObject({ lane: "verified", error: null, evidence_hash: null, signature: null });
    expect(result.content_type).toBe("application/json");
    const request = echoedRequest(result);
    expect(request).toEqual({
      jsonrpc: "2.0",
      id: 1n,
      method: "tools/call",
      params: {
        name: "evidence_query",
        arguments: {
          query: { provider_id: "ext", check_id: "probe", params: { mode: "ok" } },
          context: CONTEXT_JSON,
        },
      },
    });
    expect(field(echoedRequest(await client.query(query("ok"), CONTEXT)), "id")).toBe(2n);
  });

  it("uses the sanitized correlation id as the request id and sends the context unchanged", async () => {
    const client = stdioProvider(REFERENCE_PROVIDER);
    const context = { ...CONTEXT, correlation_id: "  corr-`42`  " };
    const request = echoedRequest(await client.query(query("ok"), context));

    expect(request.id).toBe("corr-`42`");
    expect(field(request, "params", "arguments", "context", "correlation_id")).toBe("  corr-`42`  ");
  });

  it("omits unset query params", async () => {
    const client = stdioProvider(REFERENCE_PROVIDER);
    const request = echoedRequest(await client.query({ provider_id: "ext", check_id: "probe" }, CONTEXT));

    expect(field(request, "params", "arguments", "query")).toEqual({ provider_id: "ext", check_id: "probe" });
  });

  it("serializes concurrent calls on one child", async () => {
    const client = stdioProvider(REFERENCE_PROVIDER);
    const results = await Promise.all([1, 2, 3].map(() => client.query(query("ok"), CONTEXT)));

    expect(results.map((result) => echoedRequest(result).id)).toEqual([1n, 2n, 3n]);
    expect(new Set(results.map((result) => jsonValueOf(result).pid)).size).toBe(1);
  });

  it("stdio + mcp: initializes, skips notifications, answers pings, reads structuredContent", async () => {
    const client = stdioProvider(STANDARD_PROVIDER, { protocol: "mcp" });
    const structured = await client.query(query("structured"), SMALL_CONTEXT);

    expect(structured.lane).toBe("asserted");
    expect(jsonValueOf(structured).context).toEqual({ ...CONTEXT_JSON, tenant_id: 7n, namespace_id: 3n });

    const chatty = await client.query(query("chatty"), SMALL_CONTEXT);
    expect(jsonValueOf(chatty).pid).toBe(jsonValueOf(structured).pid);
  });

  it("stdio + mcp: reads an EvidenceResult from JSON text without losing integers", async () => {
    const client = stdioProvider(STANDARD_PROVIDER, { protocol: "mcp" });
    const result = await client.query(query("text"), SMALL_CONTEXT);

    expect(jsonValueOf(result).big).toBe(U64_MAX);
    expect(result.lane).toBe("verified");
  });

  it("http + decision_gate: posts JSON with the configured headers and keeps integers exact", async () => {
    const server = await startServer(echoHandler);
    const client = httpProvider(server, { auth: { bearer_token: TOKEN } });
    const result = await client.query(query("ok"), { ...CONTEXT, correlation_id: "corr-1" });

    const value = jsonValueOf(result);
    expect(value.big).toBe(U64_MAX);
    expect(value.headers).toEqual({
      authorization: `Bearer ${TOKEN}`,
      "x-correlation-id": "corr-1",
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
    });
    expect(field(value.request, "id")).toBe("corr-1");
    expect(field(value.request, "params", "arguments", "context")).toEqual({
      ...CONTEXT_JSON,
      correlation_id: "corr-1",
    });
  });

  it("http + decision_gate: reads the response from an event stream", async () => {
    const server = await startServer((request, response) => {
      response.setHeader("content-type", "text/event-stream");
      response.write(`event: message\ndata: ${compactJson({ jsonrpc: "2.0", method: "notifications/progress" })}\n\n`);
      response.end(`data: ${evidenceResponse(request, { big: U64_MAX })}\n\n`);
    });
    const result = await httpProvider(server).query(query("ok"), CONTEXT);

    expect(jsonValueOf(result).big).toBe(U64_MAX);
  });

  it("http + mcp: runs the Streamable HTTP handshake and keeps the session", async () => {
    const url = await startStandardHttpProvider();
    const client = provider({ url, allow_insecure_http: true, protocol: "mcp", max_retries: 0n });

    const first = await client.query(query("structured"), SMALL_CONTEXT);
    const second = await client.query(query("text"), SMALL_CONTEXT);
    const third = await client.query(query("structured"), SMALL_CONTEXT);

    expect(jsonValueOf(first).context).toEqual({ ...CONTEXT_JSON, tenant_id: 7n, namespace_id: 3n });
    expect(jsonValueOf(second).big).toBe(U64_MAX);
    expect(typeof jsonValueOf(first).session).toBe("string");
    expect(jsonValueOf(third).session).toBe(jsonValueOf(first).session);
  });

  it("http + mcp: opens a new session when the server forgot the old one", async () => {
    const url = await startStandardHttpProvider();
    const client = provider({ url, allow_insecure_http: true, protocol: "mcp", max_retries: 1n, retry_backoff_ms: 0n });

    const first = await client.query(query("forget_session"), SMALL_CONTEXT);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const second = await client.query(query("structured"), SMALL_CONTEXT);

    expect(jsonValueOf(second).session).not.toBe(jsonValueOf(first).session);
  });
});

describe("answers that are not evidence", () => {
  const client = () => stdioProvider(REFERENCE_PROVIDER);

  it.each([
    ["error", "provider exploded"],
    ["text", "unexpected text response: plain words"],
    ["invalid", "invalid tool result"],
    ["empty", "empty tool result"],
    ["missing_result", "missing tool result"],
    ["garbage", "invalid json-rpc response"],
    ["huge", "mcp response too large"],
    ["no_length", "missing content length header"],
  ])("reference provider mode %s fails with %j", async (mode, reason) => {
    await expectFailure(client().query(query(mode), CONTEXT), reason);
  });

  it("takes a reference-protocol answer whatever its id, as the reference does", async () => {
    expect(jsonValueOf(await client().query(query("wrong_id"), CONTEXT)).big).toBe(U64_MAX);
  });

  it("passes the provider's JSON-RPC error message on verbatim", async () => {
    const message = "upstream said: nope (code 7)";
    await expectFailure(stdioProvider(REFERENCE_PROVIDER).query(query("error", { message }), CONTEXT), message);
  });

  it("keeps working after a broken frame (the child is replaced)", async () => {
    const client = stdioProvider(REFERENCE_PROVIDER);
    await expectFailure(client.query(query("no_length"), CONTEXT), "missing content length header");
    expect(jsonValueOf(await client.query(query("ok"), CONTEXT)).big).toBe(U64_MAX);
  });

  it("fails on a standard tool error or plain text, and keeps the child", async () => {
    const client = stdioProvider(STANDARD_PROVIDER, { protocol: "mcp" });
    const before = jsonValueOf(await client.query(query("structured"), SMALL_CONTEXT)).pid;

    await expectFailure(client.query(query("tool_error"), SMALL_CONTEXT), "check failed: nothing to see");
    await expectFailure(client.query(query("plain_text"), SMALL_CONTEXT), "unexpected text response: hello there");
    expect(jsonValueOf(await client.query(query("structured"), SMALL_CONTEXT)).pid).toBe(before);
  });

  it("refuses an invalid correlation id before sending anything", async () => {
    const server = await startServer(echoHandler);
    const client = httpProvider(server);
    await expectFailure(
      client.query(query("ok"), { ...CONTEXT, correlation_id: "two words" }),
      "invalid correlation id",
    );
    expect(server.received).toHaveLength(0);
  });
});

describe("child process lifecycle", () => {
  it("times out a slow call with stdio_request_timeout_ms, then restarts the child for the next one", async () => {
    const client = stdioProvider(REFERENCE_PROVIDER, { stdio_request_timeout_ms: 500n });
    const before = jsonValueOf(await client.query(query("ok"), CONTEXT)).pid;
    const started = Date.now();

    await expectFailure(client.query(query("slow", { delay_ms: 5_000n }), CONTEXT), "mcp request timed out");
    expect(Date.now() - started).toBeLessThan(2_000);
    const after = jsonValueOf(await client.query(query("ok"), CONTEXT)).pid;
    expect(after).not.toBe(before);
  });

  it("reports a child that exits and restarts it on the next call", async () => {
    const client = stdioProvider(REFERENCE_PROVIDER);
    const before = jsonValueOf(await client.query(query("ok"), CONTEXT)).pid;

    await expectFailure(client.query(query("exit", { code: 3n }), CONTEXT), "mcp process exited: exit status: 3");
    const after = jsonValueOf(await client.query(query("ok"), CONTEXT)).pid;
    expect(after).not.toBe(before);
  });

  it("reports a command that cannot be started", async () => {
    const client = stdioProvider([`${FIXTURES}no-such-provider`], { max_retries: 1n, retry_backoff_ms: 0n });
    await expectFailure(client.query(query("ok"), CONTEXT), "failed to spawn mcp provider");
  });
});

describe("HTTP failures and retries", () => {
  it("retries a 503 and succeeds on the next attempt", async () => {
    const server = await startServer((request, response, index) => {
      if (index === 0) response.writeHead(503).end("busy");
      else echoHandler(request, response, index);
    });
    const result = await httpProvider(server, { max_retries: 2n }).query(query("ok"), CONTEXT);

    expect(jsonValueOf(result).big).toBe(U64_MAX);
    expect(server.received).toHaveLength(2);
  });

  it("gives up after max_retries with the last failure", async () => {
    const server = await startServer((_, response) => void response.writeHead(503).end());
    const client = httpProvider(server, { max_retries: 2n });

    await expectFailure(client.query(query("ok"), CONTEXT), "http request failed with status 503 Service Unavailable");
    expect(server.received).toHaveLength(3);
  });

  it("does not retry a provider's JSON-RPC error or a non-transient status", async () => {
    const server = await startServer((request, response) => {
      if (field(request.body, "params", "arguments", "query", "params", "mode") === "error") {
        response.end(rpcResponse(request, { error: { code: -32000n, message: "no such check" } }));
      } else {
        response.writeHead(500).end();
      }
    });
    const client = httpProvider(server, { max_retries: 3n });

    await expectFailure(client.query(query("error"), CONTEXT), "no such check");
    await expectFailure(
      client.query(query("ok"), CONTEXT),
      "http request failed with status 500 Internal Server Error",
    );
    expect(server.received).toHaveLength(2);
  });

  it("follows redirects as the reference does, and refuses them with follow_redirects = false", async () => {
    const server = await startServer((request, response, index) => {
      if (index % 2 === 0) response.writeHead(307, { location: "/elsewhere" }).end();
      else echoHandler(request, response, index);
    });
    expect(jsonValueOf(await httpProvider(server).query(query("ok"), CONTEXT)).big).toBe(U64_MAX);
    expect(server.received).toHaveLength(2);
    await expectFailure(
      httpProvider(server, { follow_redirects: false }).query(query("ok"), CONTEXT),
      "http request failed with status 307 Temporary Redirect",
    );
    expect(server.received).toHaveLength(3);
  });

  it("never puts the bearer token into an error message", async () => {
    const server = await startServer((request, response, index) => {
      if (index === 0) response.writeHead(401).end(`bad token ${TOKEN}`);
      else
        response.end(
          rpcResponse(request, { error: { code: -1n, message: `rejected ${request.headers.authorization}` } }),
        );
    });
    const client = httpProvider(server, { auth: { bearer_token: TOKEN } });

    const unauthorized = await failureOf(client.query(query("ok"), CONTEXT));
    const echoed = await failureOf(client.query(query("ok"), CONTEXT));
    expect(unauthorized.message).toBe("evidence provider error: http request failed with status 401 Unauthorized");
    expect(echoed.message).toBe("evidence provider error: rejected Bearer [redacted]");
  });

  it.each([
    ["a declared length", (response: ServerResponse) => response.writeHead(200, { "content-length": "2000000" }).end()],
    [
      "a streamed body",
      (response: ServerResponse) => {
        response.writeHead(200, { "content-type": "application/json" });
        for (let chunk = 0; chunk < 9; chunk++) response.write(" ".repeat(128 * 1024));
        response.end("{}");
      },
    ],
  ])("refuses a response over 1 MiB (%s)", async (_, answer) => {
    const server = await startServer((_request, response) => answer(response));
    await expectFailure(httpProvider(server).query(query("ok"), CONTEXT), "http response too large");
  });

  it("times out waiting for headers and waiting for the body", async () => {
    const server = await startServer((_, response, index) => {
      if (index === 1) response.writeHead(200, { "content-type": "application/json" }).write("{");
    });
    const client = httpProvider(server, { timeouts: { connect_timeout_ms: 100n, request_timeout_ms: 500n } });

    await expectFailure(client.query(query("ok"), CONTEXT), "http request timed out");
    await expectFailure(client.query(query("ok"), CONTEXT), "http response timed out");
  });

  it("reports a refused connection", async () => {
    const server = await startServer(echoHandler);
    const url = server.url;
    await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
    const client = provider({ url, allow_insecure_http: true, max_retries: 1n, retry_backoff_ms: 0n });
    await expectFailure(client.query(query("ok"), CONTEXT), "http request failed");
  });
});

describe("sanitizeCorrelationId", () => {
  it("trims as Rust does and accepts HTTP token characters", () => {
    expect(sanitizeCorrelationId(null)).toBeNull();
    expect(sanitizeCorrelationId(" \tabc-1.2_3~`|^!#$%&'*+ \n")).toBe("abc-1.2_3~`|^!#$%&'*+");
    expect(sanitizeCorrelationId("\u0085abc\u3000")).toBe("abc");
    expect(sanitizeCorrelationId("a".repeat(128))).toBe("a".repeat(128));
  });

  it.each([
    ["   "],
    ["a".repeat(129)],
    ["two words"],
    ["caf\u00e9"],
    ["\ufeffabc"],
    ["a/b"],
    ['"quoted"'],
    ["a\u0001"],
  ])("refuses %j", (id) => {
    expect(() => sanitizeCorrelationId(id)).toThrow("evidence provider error: invalid correlation id");
  });
});

describe("McpProviderSettings", () => {
  function issues(input: McpProviderSettingsInput): string[] {
    const parsed = McpProviderSettings.safeParse(input);
    return parsed.success ? [] : parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
  }

  it("fills in the defaults", () => {
    expect(McpProviderSettings.parse({ command: ["provider"] })).toEqual({
      command: ["provider"],
      url: null,
      allow_insecure_http: false,
      auth: { bearer_token: null },
      timeouts: { connect_timeout_ms: 2000, request_timeout_ms: 10000 },
      protocol: "decision_gate",
      max_retries: 0,
      retry_backoff_ms: 100,
      stdio_request_timeout_ms: null,
      follow_redirects: true,
    });
  });

  it("drops keys that belong to the provider registry", () => {
    const parsed = McpProviderSettings.parse({
      url: "https://x.test/rpc",
      name: "ci",
      capabilities_path: "c.json",
    } as never);
    expect(parsed).not.toHaveProperty("name");
    expect(parsed.url).toBe("https://x.test/rpc");
  });

  it.each<[string, McpProviderSettingsInput]>([
    ["url: mcp provider requires command or url", {}],
    ["url: insecure http disabled for provider", { url: "http://127.0.0.1/rpc" }],
    ["url: url must be an http:// or https:// URL", { url: "ftp://example.test/" }],
    ["auth.bearer_token: auth.bearer_token must be non-empty", { url: "https://x.test", auth: { bearer_token: " " } }],
    [
      "timeouts.connect_timeout_ms: must be between 100 and 10000 milliseconds",
      { command: ["p"], timeouts: { connect_timeout_ms: 99n } },
    ],
    [
      "timeouts.request_timeout_ms: must be between 500 and 30000 milliseconds",
      { command: ["p"], timeouts: { request_timeout_ms: 30_001n } },
    ],
    [
      "timeouts.request_timeout_ms: request_timeout_ms must be >= connect_timeout_ms",
      { command: ["p"], timeouts: { connect_timeout_ms: 3000n, request_timeout_ms: 2000n } },
    ],
    ["max_retries: must be between 0 and 5", { command: ["p"], max_retries: 6n }],
    ["max_retries: expected an integer", { command: ["p"], max_retries: 1 as never }],
    ['protocol: Invalid option: expected one of "decision_gate"|"mcp"', { command: ["p"], protocol: "grpc" as never }],
  ])("refuses with %s", (issue, input) => {
    expect(issues(input)).toContain(issue);
  });

  it("accepts plain http when allowed, and a command without a url", () => {
    expect(issues({ url: "http://127.0.0.1/rpc", allow_insecure_http: true })).toEqual([]);
    expect(issues({ command: ["p"] })).toEqual([]);
  });

  it("checks an unused url too, as the reference's config validation does", () => {
    expect(issues({ command: ["p"], url: "http://ignored.test" })).toEqual([
      "url: insecure http disabled for provider",
    ]);
  });
});
