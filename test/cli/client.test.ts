import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import {
  createMcpClient,
  MAX_MCP_RESPONSE_BYTES,
  type McpClient,
  McpClientError,
  type McpClientOptions,
  parseSseBody,
} from "../../src/cli/client.js";
import { parseJson } from "../../src/json/parse.js";
import { isJsonObject, type JsonObject, type JsonValue, U64_MAX } from "../../src/json/value.js";
import { compactJson } from "../../src/json/write.js";

const FRAMED_SERVER = fileURLToPath(new URL("../fixtures/cli/framed-server.mjs", import.meta.url));
const STANDARD_SERVER = fileURLToPath(new URL("../fixtures/providers/standard-mcp-provider.mjs", import.meta.url));

const cleanups: Array<() => Promise<unknown>> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function client(options: McpClientOptions): McpClient {
  const created = createMcpClient(options);
  cleanups.push(() => created.close());
  return created;
}

async function failure(pending: Promise<unknown>): Promise<McpClientError> {
  const error = await pending.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(McpClientError);
  return error as McpClientError;
}

// ---------------------------------------------------------------------------------------------------------------
// A real HTTP server answering JSON-RPC the way the test tells it to.

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

type Answer = (request: JsonObject, response: ServerResponse) => void;

async function startServer(answer: Answer): Promise<{ endpoint: string; received: Received[] }> {
  const received: Received[] = [];
  const server: Server = createServer(async (request, response) => {
    if (request.method !== "POST") return void response.writeHead(405).end();
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    received.push({ headers: request.headers, body });
    answer(parseJson(body) as JsonObject, response);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  cleanups.push(async () => {
    server.closeAllConnections();
    server.close();
    await once(server, "close");
  });
  return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}/rpc`, received };
}

function rpcResult(request: JsonObject, result: JsonValue): string {
  return compactJson({ jsonrpc: "2.0", id: request.id, result });
}

function toolResult(request: JsonObject, output: JsonValue): string {
  return rpcResult(request, { content: [{ type: "json", json: output }] });
}

function sendJson(response: ServerResponse, text: string, status = 200): void {
  response.writeHead(status, { "content-type": "application/json" }).end(text);
}

/** Echoes the call's arguments next to a u64::MAX, so both directions of big-integer handling are visible. */
const echoTool: Answer = (request, response) => {
  const params = request.params as JsonObject | undefined;
  if (request.method === "tools/list") return sendJson(response, rpcResult(request, { tools: [{ name: "echo" }] }));
  sendJson(response, toolResult(request, { big: U64_MAX, echo: params?.arguments ?? null }));
};

describe("the http transport (Decision Gate dialect)", () => {
  it("unwraps tool output, keeps big integers exact both ways, and numbers requests 1, 2, 3", async () => {
    const server = await startServer(echoTool);
    const mcp = client({ transport: "http", endpoint: server.endpoint });

    expect(await mcp.listTools()).toEqual({ tools: [{ name: "echo" }] });
    expect(await mcp.callTool("echo", { n: U64_MAX })).toEqual({ big: U64_MAX, echo: { n: U64_MAX } });
    expect(await mcp.callTool("echo", {})).toEqual({ big: 18_446_744_073_709_551_615n, echo: {} });

    expect(server.received.map((entry) => entry.body)).toEqual([
      '{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
      '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"n":18446744073709551615}}}',
      '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{}}}',
    ]);
  });

  it("sends the JSON content type, the bearer token and the client subject", async () => {
    const server = await startServer(echoTool);
    await client({
      transport: "http",
      endpoint: server.endpoint,
      bearerToken: "tok-1",
      clientSubject: "alice",
    }).callTool("echo", {});
    await client({ transport: "http", endpoint: server.endpoint }).callTool("echo", {});

    const [authenticated, anonymous] = server.received.map((entry) => entry.headers);
    expect(authenticated).toMatchObject({
      "content-type": "application/json",
      authorization: "Bearer tok-1",
      "x-decision-gate-client-subject": "alice",
    });
    expect(authenticated?.accept).not.toBe("text/event-stream");
    expect(anonymous?.authorization).toBeUndefined();
    expect(anonymous?.["x-decision-gate-client-subject"]).toBeUndefined();
  });

  it("turns a JSON-RPC error into a protocol error keeping code and data", async () => {
    const server = await startServer((request, response) =>
      sendJson(
        response,
        compactJson({
          jsonrpc: "2.0",
          id: request.id,
          error: { code: -32004n, message: "scenario not defined", data: { kind: "not_found", retryable: false } },
        }),
      ),
    );
    const error = await failure(client({ transport: "http", endpoint: server.endpoint }).callTool("x", {}));
    expect(error.message).toBe("mcp protocol error: scenario not defined");
    expect(error.kind).toBe("protocol");
    expect(error.code).toBe(-32004n);
    expect(error.data).toEqual({ kind: "not_found", retryable: false });
  });

  it("treats any non-2xx status as a transport error with the trimmed body", async () => {
    const server = await startServer((request, response) =>
      sendJson(response, `  ${compactJson({ jsonrpc: "2.0", id: request.id, error: { code: -32602n } })}\n`, 400),
    );
    const error = await failure(client({ transport: "http", endpoint: server.endpoint }).listTools());
    expect(error.message).toBe(
      'mcp transport error: http status 400: {"jsonrpc":"2.0","id":1,"error":{"code":-32602}}',
    );
    expect(error.kind).toBe("transport");
  });

  it("does not follow redirects", async () => {
    const target = await startServer(echoTool);
    const server = await startServer((_, response) => response.writeHead(307, { location: target.endpoint }).end());
    const error = await failure(client({ transport: "http", endpoint: server.endpoint }).listTools());
    expect(error.message).toBe("mcp transport error: http status 307: ");
    expect(target.received).toEqual([]);
  });

  it("gives up after the timeout", async () => {
    const server = await startServer(() => undefined);
    const started = Date.now();
    const error = await failure(client({ transport: "http", endpoint: server.endpoint, timeoutMs: 150 }).listTools());
    expect(error.message).toBe("mcp transport error: request timed out after 150 ms");
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("refuses a response body over 16 MiB", async () => {
    const server = await startServer((_, response) => sendJson(response, " ".repeat(MAX_MCP_RESPONSE_BYTES + 1)));
    const error = await failure(client({ transport: "http", endpoint: server.endpoint }).listTools());
    expect(error.kind).toBe("response_too_large");
    expect(error.message).toMatch(/^mcp response exceeds size limit \(\d+ > 16777216\)$/);
  });

  it("reports unreadable responses and payloads", async () => {
    const server = await startServer((request, response) =>
      request.method === "tools/list"
        ? sendJson(response, "not json")
        : sendJson(response, rpcResult(request, { content: [{ type: "text", text: "hi" }] })),
    );
    const mcp = client({ transport: "http", endpoint: server.endpoint });
    expect((await failure(mcp.listTools())).message).toMatch(/^mcp protocol error: invalid json-rpc response: /);
    expect((await failure(mcp.callTool("t", {}))).message).toBe("mcp json error: invalid tools/call payload for t");
  });

  it("reports a refused connection", async () => {
    const server = await startServer(echoTool);
    const endpoint = server.endpoint;
    await cleanups.pop()?.();
    const error = await failure(client({ transport: "http", endpoint }).listTools());
    expect(error.message).toMatch(/^mcp transport error: request failed: connect ECONNREFUSED/);
  });

  it("passes resources/list and resources/read through", async () => {
    const server = await startServer((request, response) => {
      const params = request.params as JsonObject | undefined;
      const result =
        request.method === "resources/list"
          ? { resources: [{ uri: "decision-gate://docs/a" }] }
          : { contents: [{ uri: params?.uri ?? null, mimeType: "text/markdown", text: "# A" }] };
      sendJson(response, rpcResult(request, result));
    });
    const mcp = client({ transport: "http", endpoint: server.endpoint });
    expect(await mcp.listResources()).toEqual({ resources: [{ uri: "decision-gate://docs/a" }] });
    expect(await mcp.readResource("decision-gate://docs/a")).toEqual({
      contents: [{ uri: "decision-gate://docs/a", mimeType: "text/markdown", text: "# A" }],
    });
    expect(server.received[1]?.body).toBe(
      '{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"decision-gate://docs/a"}}',
    );
  });
});

describe("the sse transport", () => {
  it("asks for an event stream and reads the first event's data lines", async () => {
    const server = await startServer((request, response) => {
      const text = toolResult(request, { big: U64_MAX });
      const split = text.indexOf('"result"');
      response.writeHead(200, { "content-type": "text/event-stream" });
      response.end(
        `event: message\r\ndata: ${text.slice(0, split)}\r\ndata:    ${text.slice(split)}\r\n\r\ndata: {}\n\n`,
      );
    });
    const mcp = client({ transport: "sse", endpoint: server.endpoint, bearerToken: "t" });
    expect(await mcp.callTool("x", {})).toEqual({ big: U64_MAX });
    expect(server.received[0]?.headers).toMatchObject({ accept: "text/event-stream", authorization: "Bearer t" });
  });

  it("keeps the http status rule", async () => {
    const server = await startServer((_, response) => response.writeHead(401).end("data: nope\n\n"));
    const error = await failure(client({ transport: "sse", endpoint: server.endpoint }).listTools());
    expect(error.message).toBe("mcp transport error: http status 401: data: nope");
  });

  it("parses SSE bodies as the reference CLI does", () => {
    const bytes = (text: string) => new TextEncoder().encode(text);
    expect(parseSseBody(bytes("\n: comment\ndata:a\ndata:  b\nid: 1\n\ndata: c\n"))).toBe("a\nb");
    expect(parseSseBody(bytes("data: only"))).toBe("only");
    expect(() => parseSseBody(bytes("event: x\n\n"))).toThrow("mcp protocol error: sse response missing data");
    expect(() => parseSseBody(Uint8Array.of(0x64, 0xff))).toThrow(
      "mcp protocol error: sse response was not valid utf-8",
    );
  });
});

describe("the stdio transport (Decision Gate dialect)", () => {
  const framed = (extra: Partial<McpClientOptions> = {}) =>
    client({ transport: "stdio", stdioCommand: process.execPath, stdioArgs: [FRAMED_SERVER], ...extra });

  it("frames requests with Content-Length and passes args and environment", async () => {
    const mcp = framed({ stdioArgs: [FRAMED_SERVER, "--flag"], stdioEnv: { DG_CLIENT_TEST: "value" } });
    expect(await mcp.listTools()).toEqual({ tools: [{ name: "raw" }] });
    expect(await mcp.callTool("raw", { n: U64_MAX })).toEqual({
      request:
        '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"raw","arguments":{"n":18446744073709551615}}}',
      argv: ["--flag"],
      env: "value",
    });
  });

  it("keeps big integers exact and reads frames that arrive in pieces after other headers", async () => {
    const mcp = framed();
    expect(await mcp.callTool("big", {})).toEqual({ big: U64_MAX });
    expect(await mcp.callTool("chunked", {})).toEqual({ chunked: true });
  });

  it("sends one request at a time", async () => {
    const mcp = framed();
    const answers = await Promise.all([
      mcp.callTool("chunked", {}),
      mcp.callTool("big", {}),
      mcp.callTool("chunked", {}),
    ]);
    expect(answers).toEqual([{ chunked: true }, { big: U64_MAX }, { chunked: true }]);
  });

  it("turns a JSON-RPC error into a protocol error", async () => {
    const error = await failure(framed().callTool("fail", {}));
    expect(error.message).toBe("mcp protocol error: scenario not defined");
    expect(error.code).toBe(-32004n);
    expect(error.data).toEqual({ kind: "not_found" });
  });

  it("times out, stops the server, and reports it closed afterwards", async () => {
    const mcp = framed({ timeoutMs: 200 });
    expect((await failure(mcp.callTool("hang", {}))).message).toBe(
      "mcp transport error: request timed out after 200 ms",
    );
    expect((await failure(mcp.callTool("big", {}))).message).toBe("mcp transport error: stdio closed");
  });

  it("stops the server after an unreadable frame", async () => {
    const mcp = framed();
    expect((await failure(mcp.callTool("garbage", {}))).message).toBe("mcp protocol error: invalid content length");
    expect((await failure(mcp.callTool("big", {}))).message).toBe("mcp transport error: stdio closed");
  });

  it("reports a server that exits", async () => {
    const error = await failure(framed().callTool("exit", {}));
    expect(error.message).toBe("mcp transport error: stdio closed");
  });

  it("reports a command that cannot be spawned", async () => {
    const mcp = client({ transport: "stdio", stdioCommand: "/nonexistent/decision-gate" });
    const error = await failure(mcp.listTools());
    expect(error.message).toBe("mcp transport error: spawn stdio failed: spawn /nonexistent/decision-gate ENOENT");
  });
});

describe("client configuration", () => {
  it.each([
    [{ transport: "http" }, "mcp client config error: endpoint is required for HTTP/SSE transport"],
    [{ transport: "mcp-http" }, "mcp client config error: endpoint is required for HTTP/SSE transport"],
    [{ transport: "sse", endpoint: "not a url" }, "mcp client config error: invalid endpoint: not a url"],
    [
      { transport: "http", endpoint: "http://h/rpc", bearerToken: "a\nb" },
      "mcp client config error: invalid bearer token header",
    ],
    [
      { transport: "sse", endpoint: "http://h/rpc", clientSubject: "é" },
      "mcp client config error: invalid client subject header",
    ],
    [{ transport: "stdio" }, "mcp client config error: stdio command is required"],
    [{ transport: "mcp-stdio" }, "mcp client config error: stdio command is required"],
  ] as Array<[McpClientOptions, string]>)("refuses %o", (options, message) => {
    expect(() => createMcpClient(options)).toThrow(message);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Standard MCP through the SDK, against the SDK-based evidence provider fixture.

const QUERY_CONTEXT = { tenant_id: 7n, namespace_id: 3n };

function evidenceArgs(params: JsonObject): JsonObject {
  return { query: { params }, context: QUERY_CONTEXT };
}

function describeStandardMcp(name: string, connect: () => Promise<McpClientOptions>) {
  describe(name, () => {
    it("lists tools with their input schemas", async () => {
      const tools = (await client(await connect()).listTools()) as { tools: JsonObject[] };
      expect(tools.tools.map((tool) => tool.name)).toEqual(["evidence_query"]);
      expect(isJsonObject(tools.tools[0]?.inputSchema)).toBe(true);
    });

    it("returns structuredContent as the tool output", async () => {
      const output = (await client(await connect()).callTool("evidence_query", evidenceArgs({}))) as JsonObject;
      expect(output).toMatchObject({
        lane: "asserted",
        content_type: "application/json",
        value: { kind: "json", value: { context: QUERY_CONTEXT } },
      });
    });

    it("reads a JSON text result losslessly", async () => {
      const output = await client(await connect()).callTool("evidence_query", evidenceArgs({ mode: "text" }));
      expect(output).toEqual({
        value: { kind: "json", value: { big: U64_MAX, context: QUERY_CONTEXT } },
        lane: "verified",
      });
    });

    it("throws on an isError result with its text", async () => {
      const error = await failure(
        client(await connect()).callTool("evidence_query", evidenceArgs({ mode: "tool_error" })),
      );
      expect(error.message).toBe("mcp protocol error: check failed: nothing to see");
    });

    it("gives up after the timeout", async () => {
      const options = { ...(await connect()), timeoutMs: 300 };
      const slow = evidenceArgs({ mode: "slow", delay_ms: 1000n });
      const error = await failure(client(options).callTool("evidence_query", slow));
      expect(error.message).toBe("mcp transport error: request timed out after 300 ms");
    });
  });
}

describeStandardMcp("the mcp-stdio transport", async () => ({
  transport: "mcp-stdio",
  stdioCommand: process.execPath,
  stdioArgs: [STANDARD_SERVER],
}));

describeStandardMcp("the mcp-http transport", async () => ({
  transport: "mcp-http",
  endpoint: `http://127.0.0.1:${await startStandardHttpServer()}/mcp`,
  bearerToken: "tok",
  clientSubject: "alice",
}));

/** Starts the fixture with `--http 0` and returns the port it prints. */
async function startStandardHttpServer(): Promise<number> {
  const child: ChildProcess = spawn(process.execPath, [STANDARD_SERVER, "--http", "0"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  cleanups.push(async () => {
    child.kill("SIGKILL");
    if (child.exitCode === null && child.signalCode === null) await once(child, "close");
  });
  if (child.stdout === null) throw new Error("no stdout");
  const [line] = (await once(createInterface({ input: child.stdout }), "line")) as [string];
  return Number((parseJson(line) as { port: bigint }).port);
}

describe("the mcp-http transport against a hand-written server", () => {
  /** Standard MCP answers written as exact JSON text, with a text mirror next to `structuredContent`. */
  const standardServer: Answer = (request, response) => {
    const params = (request.params ?? {}) as JsonObject;
    if (request.id === undefined) return void response.writeHead(202).end();
    if (request.method === "initialize") {
      const serverInfo = { name: "hand-written", version: "1.0.0" };
      const result = { protocolVersion: params.protocolVersion ?? null, capabilities: { tools: {} }, serverInfo };
      return sendJson(response, rpcResult(request, result));
    }
    const output: JsonObject = { big: U64_MAX, small: 5n };
    const mirror = params.name === "mirrored" ? compactJson(output) : "a summary, not JSON";
    sendJson(response, rpcResult(request, { content: [{ type: "text", text: mirror }], structuredContent: output }));
  };

  it("takes the exact text mirror when it is the structured document, and sends the auth headers", async () => {
    const server = await startServer(standardServer);
    const mcp = client({ transport: "mcp-http", endpoint: server.endpoint, bearerToken: "tok", clientSubject: "bob" });
    expect(await mcp.callTool("mirrored", {})).toEqual({ big: U64_MAX, small: 5n });
    expect(server.received[0]?.headers).toMatchObject({
      authorization: "Bearer tok",
      "x-decision-gate-client-subject": "bob",
    });
  });

  it("falls back to structuredContent as JSON.parse read it", async () => {
    const server = await startServer(standardServer);
    const output = (await client({ transport: "mcp-http", endpoint: server.endpoint }).callTool(
      "plain",
      {},
    )) as JsonObject;
    expect(output.small).toBe(5n);
    expect(output.big).toBe(Number(U64_MAX));
  });
});
