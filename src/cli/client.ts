import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { isDeepStrictEqual } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { ErrorCode, McpError } from "@modelcontextprotocol/sdk/types.js";
import { parseJson, parseJsonBytes } from "../json/parse.js";
import { isJsonObject, type JsonObject, type JsonValue, setOwn, toPlainJson, toStructuredJson } from "../json/value.js";
import { compactJson } from "../json/write.js";
import { ContentLengthDecoder, type ContentLengthError, encodeContentLength } from "../net/framing.js";

/*
 * The CLI's client for a Decision Gate server (interface §7, "MCP client args").
 *
 * `http`, `sse` and `stdio` speak the Decision Gate dialect as the reference CLI does: no `initialize`, JSON-RPC
 * ids 1, 2, 3…, one POST per request (answered with JSON, or with one `data:` event for `sse`), or Content-Length
 * frames on a spawned server's stdin/stdout; tool results arrive as `{"content":[{"type":"json","json":X}]}`.
 * Responses are parsed losslessly, so integers beyond 2^53 stay exact.
 *
 * `mcp-http` and `mcp-stdio` speak standard MCP through the official SDK `Client`.
 */

export type McpClientTransport = "http" | "sse" | "stdio" | "mcp-http" | "mcp-stdio";

export interface McpClientOptions {
  transport: McpClientTransport;
  /** The JSON-RPC URL (`http://127.0.0.1:4000/rpc`) or, for `mcp-http`, the MCP URL (`…/mcp`). */
  endpoint?: string;
  stdioCommand?: string;
  stdioArgs?: string[];
  /** Added to the CLI's own environment for the spawned server. */
  stdioEnv?: Record<string, string>;
  /** Per request; default 5000. */
  timeoutMs?: number;
  bearerToken?: string;
  /** Sent as `x-decision-gate-client-subject`. */
  clientSubject?: string;
}

export interface McpClient {
  /** `tools/list`: `{"tools":[…]}` as the server sent it. */
  listTools(): Promise<JsonValue>;
  /** `tools/call`: the tool's output. */
  callTool(name: string, args: JsonValue): Promise<JsonValue>;
  /** `resources/list`: `{"resources":[…]}`. */
  listResources(): Promise<JsonValue>;
  /** `resources/read`: `{"contents":[…]}`. */
  readResource(uri: string): Promise<JsonValue>;
  close(): Promise<void>;
}

export const DEFAULT_TIMEOUT_MS = 5000;
/** Largest response body accepted (the reference's runpack artifact cap). */
export const MAX_MCP_RESPONSE_BYTES = 16 * 1024 * 1024;
/** The longest Content-Length header block accepted, its blank line included. */
const MAX_FRAME_HEADER_BYTES = 64 * 1024;

export type McpClientErrorKind = "config" | "transport" | "json" | "protocol" | "response_too_large";

const ERROR_PREFIXES: Record<Exclude<McpClientErrorKind, "response_too_large">, string> = {
  config: "mcp client config error",
  transport: "mcp transport error",
  json: "mcp json error",
  protocol: "mcp protocol error",
};

/**
 * A failed request, worded as the reference CLI words it (`mcp transport error: …`, `mcp protocol error: …`). For a
 * JSON-RPC error (or a failed standard MCP tool call), `code` and `data` hold what the server sent.
 */
export class McpClientError extends Error {
  readonly kind: McpClientErrorKind;
  readonly code: JsonValue | undefined;
  readonly data: JsonValue | undefined;

  constructor(kind: McpClientErrorKind, detail: string, extra: { code?: JsonValue; data?: JsonValue } = {}) {
    super(kind === "response_too_large" ? detail : `${ERROR_PREFIXES[kind]}: ${detail}`);
    this.name = "McpClientError";
    this.kind = kind;
    this.code = extra.code;
    this.data = extra.data;
  }
}

export function createMcpClient(options: McpClientOptions): McpClient {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  switch (options.transport) {
    case "http":
    case "sse":
      return new DecisionGateClient(new HttpRpcTransport(requireEndpoint(options), options, timeoutMs));
    case "stdio":
      return new DecisionGateClient(new StdioRpcTransport(requireCommand(options), options, timeoutMs));
    case "mcp-http": {
      const endpoint = requireEndpoint(options);
      return new StandardMcpClient(() => streamableHttpTransport(endpoint, options), timeoutMs);
    }
    case "mcp-stdio": {
      const command = requireCommand(options);
      return new StandardMcpClient(() => sdkStdioTransport(command, options), timeoutMs);
    }
  }
}

function requireEndpoint(options: McpClientOptions): URL {
  requireHeaderValue(options.bearerToken, "invalid bearer token header");
  requireHeaderValue(options.clientSubject, "invalid client subject header");
  if (options.endpoint === undefined) {
    throw new McpClientError("config", "endpoint is required for HTTP/SSE transport");
  }
  try {
    return new URL(options.endpoint);
  } catch {
    throw new McpClientError("config", `invalid endpoint: ${options.endpoint}`);
  }
}

/** Header values are visible ASCII, spaces and tabs; anything else would be refused by fetch mid-request. */
function requireHeaderValue(value: string | undefined, complaint: string): void {
  if (value !== undefined && /[^\t\x20-\x7e]/.test(value)) throw new McpClientError("config", complaint);
}

/** `Authorization` and `x-decision-gate-client-subject`, for those set. */
function identityHeaders(options: McpClientOptions): Record<string, string> {
  const headers: Record<string, string> = {};
  if (options.bearerToken !== undefined) headers.authorization = `Bearer ${options.bearerToken}`;
  if (options.clientSubject !== undefined) headers["x-decision-gate-client-subject"] = options.clientSubject;
  return headers;
}

function requireCommand(options: McpClientOptions): string {
  if (options.stdioCommand === undefined) throw new McpClientError("config", "stdio command is required");
  return options.stdioCommand;
}

/** The CLI's environment plus `stdioEnv`. */
function childEnvironment(options: McpClientOptions): Record<string, string> {
  const inherited = Object.entries(process.env).filter((entry): entry is [string, string] => entry[1] !== undefined);
  return { ...Object.fromEntries(inherited), ...options.stdioEnv };
}

/** Runs `attempt` with an abort signal that fires, failing the call, once `timeoutMs` have passed. */
async function withTimeout<T>(timeoutMs: number, attempt: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(timeoutError(timeoutMs));
      controller.abort();
    }, timeoutMs);
  });
  const running = attempt(controller.signal);
  running.catch(() => undefined);
  try {
    return await Promise.race([running, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function timeoutError(timeoutMs: number): McpClientError {
  return new McpClientError("transport", `request timed out after ${timeoutMs} ms`);
}

// ---------------------------------------------------------------------------------------------------------------
// Decision Gate dialect

/** Carries one JSON-RPC request text and returns the response text or bytes. */
interface RpcTransport {
  send(request: string): Promise<string | Uint8Array>;
  close(): Promise<void>;
}

class DecisionGateClient implements McpClient {
  private nextId = 1n;

  constructor(private readonly transport: RpcTransport) {}

  async listTools(): Promise<JsonValue> {
    return expectList(await this.request("tools/list"), "tools", "invalid tools/list payload");
  }

  async callTool(name: string, args: JsonValue): Promise<JsonValue> {
    const result = await this.request("tools/call", { name, arguments: args });
    return unwrapJsonContent(result, name);
  }

  async listResources(): Promise<JsonValue> {
    return expectList(await this.request("resources/list"), "resources", "invalid resources/list payload");
  }

  async readResource(uri: string): Promise<JsonValue> {
    return expectList(await this.request("resources/read", { uri }), "contents", "invalid resources/read payload");
  }

  close(): Promise<void> {
    return this.transport.close();
  }

  private async request(method: string, params?: JsonObject): Promise<JsonValue> {
    const id = this.nextId++;
    const request = compactJson({ jsonrpc: "2.0", id, method, params });
    return resultOf(parseResponse(await this.transport.send(request)), id, method);
  }
}

function parseResponse(body: string | Uint8Array): JsonObject {
  let response: JsonValue;
  try {
    response = typeof body === "string" ? parseJson(body) : parseJsonBytes(body);
  } catch (error) {
    throw new McpClientError("protocol", `invalid json-rpc response: ${(error as Error).message}`);
  }
  if (!isJsonObject(response)) throw new McpClientError("protocol", "invalid json-rpc response: not an object");
  return response;
}

/** The `result` of a response; a JSON-RPC `error` becomes an `McpClientError` keeping the server's code and data. */
function resultOf(response: JsonObject, id: bigint, method: string): JsonValue {
  const error = response.error;
  if (error !== undefined && error !== null) {
    if (!isJsonObject(error) || typeof error.message !== "string") {
      throw new McpClientError("protocol", "invalid json-rpc response: malformed error");
    }
    throw new McpClientError("protocol", error.message, { code: error.code, data: error.data });
  }
  if (response.id !== id) throw new McpClientError("protocol", "json-rpc response id mismatch");
  if (response.result === undefined) throw new McpClientError("protocol", `missing result in ${method} response`);
  return response.result;
}

/** `result` itself, once checked to be an object whose `field` is an array. */
function expectList(result: JsonValue, field: string, complaint: string): JsonValue {
  if (!isJsonObject(result) || !Array.isArray(result[field])) throw new McpClientError("json", complaint);
  return result;
}

/** `{"content":[{"type":"json","json":X}, …]}` → X (the first item; every item must be a json item). */
function unwrapJsonContent(result: JsonValue, tool: string): JsonValue {
  const content = isJsonObject(result) ? result.content : undefined;
  const isJsonItem = (item: JsonValue) => isJsonObject(item) && item.type === "json" && item.json !== undefined;
  if (!Array.isArray(content) || !content.every(isJsonItem)) {
    throw new McpClientError("json", `invalid tools/call payload for ${tool}`);
  }
  const first = content[0];
  if (!isJsonObject(first)) throw new McpClientError("protocol", `tool ${tool} returned no json content`);
  return first.json ?? null;
}

class HttpRpcTransport implements RpcTransport {
  private readonly sse: boolean;

  constructor(
    private readonly endpoint: URL,
    private readonly options: McpClientOptions,
    private readonly timeoutMs: number,
  ) {
    this.sse = options.transport === "sse";
  }

  send(request: string): Promise<string | Uint8Array> {
    return withTimeout(this.timeoutMs, (signal) => this.post(request, signal));
  }

  async close(): Promise<void> {}

  private async post(request: string, signal: AbortSignal): Promise<string | Uint8Array> {
    let response: Response;
    try {
      response = await fetch(this.endpoint, {
        method: "POST",
        headers: this.headers(),
        body: request,
        redirect: "manual",
        signal,
      });
    } catch (error) {
      throw new McpClientError("transport", `request failed: ${causeOf(error)}`);
    }
    const body = await readCapped(response);
    if (!response.ok) {
      const preview = new TextDecoder().decode(body).trim();
      throw new McpClientError("transport", `http status ${response.status}: ${preview}`);
    }
    return this.sse ? parseSseBody(body) : body;
  }

  private headers(): Record<string, string> {
    const accept: Record<string, string> = this.sse ? { accept: "text/event-stream" } : {};
    return { "content-type": "application/json", ...accept, ...identityHeaders(this.options) };
  }
}

/** The innermost message of a fetch failure (`connect ECONNREFUSED …` rather than `fetch failed`). */
function causeOf(error: unknown): string {
  const cause = (error as { cause?: unknown }).cause;
  return cause instanceof Error ? cause.message : (error as Error).message;
}

async function readCapped(response: Response): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (response.body === null) return new Uint8Array();
  try {
    for await (const chunk of response.body) {
      total += chunk.length;
      // Leaving the loop early cancels the body stream.
      if (total > MAX_MCP_RESPONSE_BYTES) throw new McpClientError("response_too_large", tooLarge(total));
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof McpClientError) throw error;
    throw new McpClientError("transport", `response read failed: ${causeOf(error)}`);
  }
  return Buffer.concat(chunks);
}

function tooLarge(actual: number): string {
  return `mcp response exceeds size limit (${actual} > ${MAX_MCP_RESPONSE_BYTES})`;
}

/** The JSON text of an SSE answer: the left-trimmed `data:` lines of its first event, joined with `\n`. */
export function parseSseBody(body: Uint8Array): string {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(body);
  } catch {
    throw new McpClientError("protocol", "sse response was not valid utf-8");
  }
  const data: string[] = [];
  for (const line of text.split("\n").map((raw) => raw.replace(/\r$/, ""))) {
    if (line === "" && data.length > 0) break;
    if (line.startsWith("data:")) data.push(line.slice("data:".length).trimStart());
  }
  if (data.length === 0) throw new McpClientError("protocol", "sse response missing data");
  return data.join("\n");
}

/**
 * A server spawned on first use, spoken to with `Content-Length: <n>\r\n\r\n<body>` frames, one request at a time.
 * Its stderr goes to the CLI's stderr.
 */
class StdioRpcTransport implements RpcTransport {
  private child: ChildProcess | null = null;
  private exited: Promise<unknown> = Promise.resolve();
  private running = false;
  private started: Promise<void> = Promise.resolve();
  private readonly decoder = new ContentLengthDecoder({
    maxHeaderBytes: MAX_FRAME_HEADER_BYTES,
    maxBodyBytes: MAX_MCP_RESPONSE_BYTES,
  });
  private failure: McpClientError | null = null;
  private wake: (() => void) | null = null;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly command: string,
    private readonly options: McpClientOptions,
    private readonly timeoutMs: number,
  ) {}

  send(request: string): Promise<Uint8Array> {
    const response = this.queue.then(() => withTimeout(this.timeoutMs, (signal) => this.exchange(request, signal)));
    this.queue = response.catch(() => undefined);
    return response;
  }

  async close(): Promise<void> {
    const child = this.child;
    if (child === null || !this.running) return;
    child.kill("SIGTERM");
    const escalation = setTimeout(() => child.kill("SIGKILL"), 1000);
    await this.exited;
    clearTimeout(escalation);
  }

  private async exchange(request: string, signal: AbortSignal): Promise<Uint8Array> {
    if (this.failure !== null) throw this.failure;
    const child = this.spawnOnce();
    signal.addEventListener("abort", () => this.stop(), { once: true });
    await this.started;
    await writeFrame(child, request).catch((error: unknown) => {
      throw this.failure ?? error;
    });
    return this.nextFrame();
  }

  private spawnOnce(): ChildProcess {
    if (this.child !== null) return this.child;
    const child = spawn(this.command, this.options.stdioArgs ?? [], {
      stdio: ["pipe", "pipe", "inherit"],
      env: childEnvironment(this.options),
    });
    this.started = once(child, "spawn").then(
      () => undefined,
      (error: Error) => {
        throw new McpClientError("transport", `spawn stdio failed: ${error.message}`);
      },
    );
    child.on("error", (error) => this.fail(new McpClientError("transport", `spawn stdio failed: ${error.message}`)));
    this.running = true;
    this.exited = once(child, "close").catch(() => undefined);
    child.on("close", () => {
      this.running = false;
      this.fail(new McpClientError("transport", "stdio closed"));
    });
    child.stdin?.on("error", () => undefined);
    child.stdout?.on("data", (chunk: Buffer) => this.receive(chunk));
    this.child = child;
    return child;
  }

  /** After a timeout or an unreadable frame the stream position is unknown, so the server is stopped. */
  private stop(): void {
    this.fail(new McpClientError("transport", "stdio closed"));
    this.child?.kill("SIGKILL");
  }

  private async nextFrame(): Promise<Uint8Array> {
    for (;;) {
      const frame = this.decoder.next();
      if (frame?.kind === "message") return frame.body;
      if (frame !== null) {
        this.stop();
        throw frameError(frame);
      }
      if (this.failure !== null) throw this.failure;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  private receive(chunk: Buffer): void {
    this.decoder.push(chunk);
    this.notify();
  }

  private fail(failure: McpClientError): void {
    this.failure ??= failure;
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}

async function writeFrame(child: ChildProcess, body: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    if (child.stdin === null) return reject(new McpClientError("transport", "missing child stdin"));
    child.stdin.write(encodeContentLength(body), (error) =>
      error ? reject(new McpClientError("transport", `stdio write failed: ${error.message}`)) : resolve(),
    );
  });
}

/** Why a response frame cannot be read, as a client error. */
function frameError(problem: ContentLengthError): McpClientError {
  switch (problem.reason) {
    case "payload too large":
      return new McpClientError("response_too_large", tooLarge(problem.bytes));
    case "header too large":
      return new McpClientError("protocol", "stdio frame header too large");
    case "missing content length":
      return new McpClientError("protocol", "missing content length in stdio response");
    case "invalid content length":
      return new McpClientError("protocol", "invalid content length");
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Standard MCP (official SDK)
//
// Limitation: the SDK reads and writes JSON with JSON.parse/JSON.stringify, so integers beyond 2^53 are rounded in
// both directions, and an integral float (`2.0`) cannot be told from an integer. Tool arguments are sent through
// `toPlainJson`. For tool output, the text mirror the server sends next to `structuredContent` is parsed losslessly
// and preferred whenever it is the same document, with integers beyond 2^53 there either rounded or as decimal strings
// (as Decision Gate servers write them), which keeps big integers exact.

function streamableHttpTransport(endpoint: URL, options: McpClientOptions): Transport {
  const requestInit: RequestInit = { headers: identityHeaders(options), redirect: "manual" };
  return new StreamableHTTPClientTransport(endpoint, { requestInit });
}

function sdkStdioTransport(command: string, options: McpClientOptions): Transport {
  return new StdioClientTransport({
    command,
    args: options.stdioArgs ?? [],
    env: childEnvironment(options),
    stderr: "inherit",
  });
}

class StandardMcpClient implements McpClient {
  private connection: Promise<Client> | null = null;

  constructor(
    private readonly openTransport: () => Transport,
    private readonly timeoutMs: number,
  ) {}

  listTools(): Promise<JsonValue> {
    return this.run(async (client) => {
      const tools: unknown[] = [];
      let cursor: string | undefined;
      do {
        const page = await client.listTools(cursor === undefined ? {} : { cursor }, this.requestOptions());
        tools.push(...page.tools);
        cursor = page.nextCursor;
      } while (cursor !== undefined);
      return fromPlainJson({ tools });
    });
  }

  callTool(name: string, args: JsonValue): Promise<JsonValue> {
    return this.run(async (client) => {
      const plainArgs = toPlainJson(args) as Record<string, unknown>;
      const result = await client.callTool({ name, arguments: plainArgs }, undefined, this.requestOptions());
      return toolOutput(result, name);
    });
  }

  listResources(): Promise<JsonValue> {
    return this.run(async (client) => fromPlainJson(await client.listResources({}, this.requestOptions())));
  }

  readResource(uri: string): Promise<JsonValue> {
    return this.run(async (client) => fromPlainJson(await client.readResource({ uri }, this.requestOptions())));
  }

  async close(): Promise<void> {
    const connection = this.connection;
    this.connection = null;
    const client = await connection?.catch(() => null);
    await client?.close();
  }

  private requestOptions() {
    return { timeout: this.timeoutMs };
  }

  private async run<T>(action: (client: Client) => Promise<T>): Promise<T> {
    try {
      return await action(await this.connect());
    } catch (error) {
      throw sdkError(error, this.timeoutMs);
    }
  }

  /** Connects (with the `initialize` handshake) on first use. */
  private connect(): Promise<Client> {
    this.connection ??= (async () => {
      const client = new Client({ name: "decision-gate-cli", version: "0.1.0" });
      await client.connect(this.openTransport(), this.requestOptions());
      return client;
    })();
    return this.connection;
  }
}

/** A `tools/call` result as the SDK returns it (the compatibility `toolResult` form has none of these fields). */
interface SdkToolResult {
  [field: string]: unknown;
  content?: unknown;
  structuredContent?: unknown;
  isError?: unknown;
}

/** The tool output: `structuredContent` (exact from the text mirror when that is the same document). */
function toolOutput(result: SdkToolResult, tool: string): JsonValue {
  const text = firstText(result.content);
  const exact = text === undefined ? undefined : parseLenient(text);
  if (result.isError === true) throw toolFailure(text, exact);
  if (result.structuredContent !== undefined) {
    const structured = result.structuredContent;
    const sameDocument =
      exact !== undefined &&
      [toStructuredJson, toPlainJson].some((plain) => isDeepStrictEqual(plain(exact), structured));
    return sameDocument ? exact : fromPlainJson(result.structuredContent);
  }
  if (exact !== undefined) return exact;
  throw new McpClientError("protocol", `tool ${tool} returned no structured content`);
}

/**
 * A failed standard MCP tool call, worded like a Decision Gate JSON-RPC error: when the text is a JSON
 * `{code, kind, message}` object its message is used (code and object kept on the error), else the text itself.
 */
function toolFailure(text: string | undefined, parsed: JsonValue | undefined): McpClientError {
  if (isJsonObject(parsed) && typeof parsed.message === "string") {
    return new McpClientError("protocol", parsed.message, { code: parsed.code, data: parsed });
  }
  return new McpClientError("protocol", text ?? "tool call failed");
}

function firstText(content: unknown): string | undefined {
  if (!Array.isArray(content)) return undefined;
  const item = content.find((entry) => entry?.type === "text" && typeof entry.text === "string");
  return item?.text;
}

function parseLenient(text: string): JsonValue | undefined {
  try {
    return parseJson(text);
  } catch {
    return undefined;
  }
}

/** A value parsed by JSON.parse in the lossless model: integral numbers within 2^53 become `bigint`. */
function fromPlainJson(value: unknown): JsonValue {
  if (typeof value === "number") return Number.isSafeInteger(value) && !Object.is(value, -0) ? BigInt(value) : value;
  if (Array.isArray(value)) return value.map(fromPlainJson);
  if (typeof value === "object" && value !== null) {
    const object: JsonObject = {};
    for (const [key, item] of Object.entries(value)) if (item !== undefined) setOwn(object, key, fromPlainJson(item));
    return object;
  }
  return value === undefined ? null : (value as JsonValue);
}

function sdkError(error: unknown, timeoutMs: number): Error {
  if (error instanceof McpClientError) return error;
  if (error instanceof McpError) {
    if (error.code === ErrorCode.RequestTimeout) return timeoutError(timeoutMs);
    if (error.code === ErrorCode.ConnectionClosed) return new McpClientError("transport", "connection closed");
    const message = error.message.replace(/^MCP error -?\d+: /, "");
    return new McpClientError("protocol", message, { code: BigInt(error.code), data: fromPlainJson(error.data) });
  }
  return new McpClientError("transport", causeOf(error));
}
