import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseJson, parseJsonBytes } from "../../src/json/parse.js";
import type { JsonObject, JsonValue } from "../../src/json/value.js";
import { compactJson } from "../../src/json/write.js";
import {
  type HostileFrame,
  hostileBodies,
  hostileFrames,
  hostileHttpRequests,
  hostileLines,
  isJsonRpcResponse,
  sameId,
  type ToolShape,
} from "../support/hostile-input.js";
import { RELEASE_GATE } from "../support/scenarios.js";
import { configDir, type ServerProcess, startServerProcess } from "../support/server-process.js";
import { type StdioSession, startStdioSession } from "../support/stdio-session.js";

/**
 * The hostile-input suite: fuzzed bodies and frames against real server processes on every transport (`/rpc` as
 * JSON and as SSE, `/mcp`, raw HTTP, stdio with newline-delimited JSON and with Content-Length frames). Every
 * answer must be a well-formed JSON-RPC answer (where JSON-RPC requires one) and never a 5xx, every server must
 * keep serving, and the stored state must stay byte for byte the same: every generated `tools/call` carries
 * arguments no tool accepts. Fixed seed and run counts keep it reproducible; a failure prints the seed and path.
 */

const MAX_BODY_BYTES = 8192;
const SEED = 1313;
const RUNS = { rpc: 200, sse: 80, mcp: 200, http: 80, ndjson: 400, framed: 400 };
const PARAMS = { seed: SEED, endOnFailure: true } as const;
const STARTUP_MS = 60_000;

const root = mkdtempSync(join(tmpdir(), "dg-hostile-"));
const database = join(root, "state.sqlite");
const config = (transport: "http" | "sse" | "stdio") => `
[server]
transport = "${transport}"
${transport === "stdio" ? "" : 'bind = "127.0.0.1:0"'}
max_body_bytes = ${MAX_BODY_BYTES}

[schema_registry]
type = "sqlite"
path = "${database}"
[schema_registry.acl]
allow_local_only = true

[run_state_store]
type = "sqlite"
path = "${database}"

[[providers]]
name = "time"
type = "builtin"
`;

let http: ServerProcess;
let sse: ServerProcess;
let ndjson: StdioSession;
let framed: StdioSession;
let tools: ToolShape[];
const stdioDirs = [configDir(config("stdio")), configDir(config("stdio"))];

beforeAll(async () => {
  [http, sse] = await Promise.all([startServerProcess(config("http")), startServerProcess(config("sse"))]);
  const listed = (await rpc(http.url, { jsonrpc: "2.0", id: 1n, method: "tools/list" })) as {
    result: { tools: Array<{ name: string; input_schema: { properties?: JsonObject } }> };
  };
  tools = listed.result.tools.map((tool) => ({
    name: tool.name,
    properties: Object.keys(tool.input_schema.properties ?? {}),
  }));
  const spec = parseJson(RELEASE_GATE) as JsonObject;
  const run = { run_id: "run-1", tenant_id: 1n, namespace_id: 2n };
  const logical = (value: bigint) => ({ kind: "logical", value });
  for (const [name, args] of [
    ["scenario_define", { spec }],
    [
      "scenario_start",
      {
        scenario_id: "release-gate",
        run_config: { ...run, scenario_id: "release-gate", dispatch_targets: [], policy_tags: [] },
        started_at: logical(1n),
        issue_entry_packets: true,
      },
    ],
    [
      "schemas_register",
      {
        record: {
          tenant_id: 1n,
          namespace_id: 2n,
          schema_id: "window",
          version: "1",
          schema: { type: "object" },
          description: null,
          created_at: logical(1n),
        },
      },
    ],
  ] as const) {
    expect(await callTool(http.url, name, args as JsonObject)).not.toHaveProperty("error");
  }
}, 120_000);

afterAll(async () => {
  await Promise.all([http?.stop(), sse?.stop(), ndjson?.end(), framed?.end()]);
  for (const dir of [root, ...stdioDirs]) rmSync(dir, { recursive: true, force: true });
}, 30_000);

async function rpc(url: string, message: JsonValue): Promise<JsonValue> {
  const response = await fetch(`${url}/rpc`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: compactJson(message),
  });
  return parseJson((await response.text()).replace(/^data: /, ""));
}

function callTool(url: string, name: string, args: JsonObject): Promise<JsonValue> {
  return rpc(url, { jsonrpc: "2.0", id: 1n, method: "tools/call", params: { name, arguments: args } });
}

/** Everything a rejected request must leave untouched: every stored row, the files, and the server's own view. */
async function snapshot(): Promise<string> {
  const store = new Database(database, { readonly: true, fileMustExist: true });
  const tables: Record<string, string> = {};
  try {
    const names = store.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all();
    for (const { name } of names as Array<{ name: string }>) {
      const rows = (store.prepare(`SELECT * FROM "${name}"`).all() as unknown[]).map((row) => JSON.stringify(row));
      const digest = createHash("sha256").update(rows.sort().join("\n")).digest("hex");
      tables[name] = `${rows.length} rows, sha256 ${digest}`;
    }
  } finally {
    store.close();
  }
  expect(tables.runs).toMatch(/^1 rows/);
  const files = [root, http.dir, sse.dir, ...stdioDirs].map((dir) =>
    readdirSync(dir, { recursive: true })
      .map(String)
      .filter((name) => !/-(wal|shm|journal)$/.test(name))
      .sort(),
  );
  const scenarios = await callTool(http.url, "scenarios_list", { tenant_id: 1n, namespace_id: 2n });
  return JSON.stringify({ tables, files, scenarios: compactJson(scenarios) }, null, 1);
}

/** The id of the JSON-RPC envelope in `body`, when it has an envelope the server can answer to. */
function envelopeId(body: Uint8Array): JsonValue | undefined {
  if (body.length > MAX_BODY_BYTES) return undefined;
  let message: JsonValue;
  try {
    message = parseJsonBytes(body);
  } catch {
    return undefined;
  }
  if (typeof message !== "object" || message === null || Array.isArray(message)) return undefined;
  const { jsonrpc, id, method } = message as JsonObject;
  return typeof jsonrpc === "string" && typeof method === "string" ? id : undefined;
}

/** A Decision Gate dialect response: JSON-RPC, its errors carrying `data.kind`. */
function expectDgResponse(answer: JsonValue): void {
  expect(isJsonRpcResponse(answer), compactJson(answer)).toBe(true);
  const { error } = answer as JsonObject;
  if (error !== undefined) expect(typeof ((error as JsonObject).data as JsonObject).kind).toBe("string");
}

/** The Decision Gate dialect's answer to `body`: a response for the body's id, or for none when it has none. */
function expectDgAnswer(body: Uint8Array, answer: JsonValue): void {
  expectDgResponse(answer);
  const { id } = answer as JsonObject;
  const requestId = envelopeId(body);
  if (requestId === undefined) expect(id).toBeNull();
  else expect(sameId(id, requestId), `answer id ${compactJson(id as JsonValue)}`).toBe(true);
}

describe("hostile input over HTTP", () => {
  for (const [name, server, runs] of [
    ["/rpc", () => http, RUNS.rpc],
    ["/rpc with SSE", () => sse, RUNS.sse],
  ] as const) {
    it(`answers every fuzzed body on ${name} with a JSON-RPC error or result, never 5xx, and changes nothing`, async () => {
      const before = await snapshot();
      const eventStream = name.endsWith("SSE");
      await fc.assert(
        fc.asyncProperty(hostileBodies(tools, MAX_BODY_BYTES), async (body) => {
          const response = await fetch(`${server().url}/rpc`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body,
          });
          expect(response.status).toBeLessThan(500);
          const text = await response.text();
          const json = eventStream ? /^data: (.*)\n\n$/s.exec(text)?.[1] : text;
          expect(json, text).toBeDefined();
          expectDgAnswer(body, parseJson(json as string));
        }),
        { ...PARAMS, numRuns: runs },
      );
      expect(await snapshot()).toBe(before);
      expect(await callTool(server().url, "providers_list", {})).toHaveProperty("result");
    }, 60_000);
  }

  it("answers every fuzzed body on /mcp without 5xx, with JSON-RPC answers, and changes nothing", async () => {
    const before = await snapshot();
    await fc.assert(
      fc.asyncProperty(hostileBodies(tools, MAX_BODY_BYTES), async (body) => {
        const response = await fetch(`${http.url}/mcp`, {
          method: "POST",
          headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
          body,
        });
        expect(response.status).toBeLessThan(500);
        const text = await response.text();
        if (response.status === 202) {
          expect(text).toBe("");
          return;
        }
        const answer = parseJson(text);
        const answers = Array.isArray(answer) ? answer : [answer];
        for (const each of answers) expect(isJsonRpcResponse(each), text).toBe(true);
        if (!Array.isArray(answer)) {
          const id = (answer as JsonObject).id;
          if (id !== null) expect(sameId(id, envelopeId(body)), text).toBe(true);
        }
      }),
      { ...PARAMS, numRuns: RUNS.mcp },
    );
    expect(await snapshot()).toBe(before);
    expect(await callTool(http.url, "providers_list", {})).toHaveProperty("result");
  }, 60_000);

  it("answers malformed HTTP framing (lengths, chunks, request lines, bytes) with 4xx or a closed connection", async () => {
    const before = await snapshot();
    const port = Number(new URL(http.url).port);
    await fc.assert(
      fc.asyncProperty(hostileHttpRequests(tools, MAX_BODY_BYTES), async (request) => {
        const received = await exchange(port, request);
        for (const [, status] of received.matchAll(/^HTTP\/1\.[01] (\d{3})/gm)) {
          expect(Number(status), received).toBeLessThan(500);
        }
      }),
      { ...PARAMS, numRuns: RUNS.http },
    );
    expect(await snapshot()).toBe(before);
    expect(await callTool(http.url, "providers_list", {})).toHaveProperty("result");
  }, 60_000);
});

/** Sends raw bytes on a new connection, half-closes it and returns what came back (the server closes, or 2 s pass). */
function exchange(port: number, request: Uint8Array): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let received = "";
    const timer = setTimeout(() => socket.destroy(), 2_000);
    socket.on("data", (chunk) => {
      received += chunk.toString("latin1");
    });
    socket.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code !== "ECONNRESET" && error.code !== "EPIPE") reject(error);
    });
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(received);
    });
    socket.end(request);
  });
}

const probeId = (n: number) => `probe-${n}-\u{1F50E}`;

/** Pings the NDJSON session and waits for its answer; earlier answers are returned, in order. */
async function probeNdjson(n: number, timeoutMs?: number): Promise<JsonValue[]> {
  ndjson.write(`${compactJson({ jsonrpc: "2.0", id: probeId(n), method: "ping" })}\n`);
  const before: JsonValue[] = [];
  for (;;) {
    const answer = await ndjson.next(timeoutMs);
    if ((answer as JsonObject).id === probeId(n)) return before;
    before.push(answer);
  }
}

/** Lists providers on the framed session and waits for the answer; earlier answers are returned, in order. */
async function probeFramed(n: number, timeoutMs?: number): Promise<JsonValue[]> {
  const body = compactJson({
    jsonrpc: "2.0",
    id: probeId(n),
    method: "tools/call",
    params: { name: "providers_list", arguments: {} },
  });
  framed.write(`Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  const before: JsonValue[] = [];
  for (;;) {
    const answer = await framed.next(timeoutMs);
    if ((answer as JsonObject).id === probeId(n)) {
      expect(answer).toHaveProperty("result");
      return before;
    }
    before.push(answer);
  }
}

/**
 * The ids of the answers JSON-RPC requires for newline-delimited `input`: one per non-blank line, except for
 * notifications (a `method` without an `id`) and responses; null where the line has no usable id.
 */
function requiredAnswers(input: Uint8Array): Array<JsonValue> {
  const ids: JsonValue[] = [];
  const lines = Buffer.from(input).toString("latin1").split("\n").slice(0, -1);
  for (const line of lines.map((text) => Buffer.from(text, "latin1"))) {
    if (/^[ \t\r]*$/.test(line.toString("latin1"))) continue;
    if (line.length > MAX_BODY_BYTES) {
      ids.push(null);
      continue;
    }
    let message: JsonValue;
    try {
      message = parseJsonBytes(line);
    } catch {
      ids.push(null);
      continue;
    }
    if (typeof message !== "object" || message === null || Array.isArray(message)) {
      ids.push(null);
      continue;
    }
    const answerable = "method" in message ? "id" in message : !("result" in message || "error" in message);
    if (!answerable) continue;
    const { id } = message as JsonObject;
    const usable =
      typeof id === "string" || typeof id === "bigint" || (typeof id === "number" && Number.isSafeInteger(id));
    ids.push(usable ? (id as JsonValue) : null);
  }
  return ids;
}

describe("hostile input over stdio", () => {
  beforeAll(async () => {
    ndjson = startStdioSession(stdioDirs[0] as string, "ndjson");
    framed = startStdioSession(stdioDirs[1] as string, "content-length");
    // Each session's framing is fixed by its first bytes; the first answers also wait for the servers to start.
    await Promise.all([probeNdjson(0, STARTUP_MS), probeFramed(0, STARTUP_MS)]);
  }, 2 * STARTUP_MS);

  it("answers every fuzzed NDJSON line JSON-RPC requires an answer for, keeps the session, and changes nothing", async () => {
    const before = await snapshot();
    let n = 0;
    await fc.assert(
      fc.asyncProperty(hostileLines(tools, MAX_BODY_BYTES), async (input) => {
        n++;
        ndjson.write(input);
        const owed = requiredAnswers(input);
        const answers = await probeNdjson(n);
        // Answers the SDK gives asynchronously may come after the probe's.
        while (answers.length < owed.length) answers.push(await ndjson.next());
        for (const answer of answers) {
          expect(isJsonRpcResponse(answer), compactJson(answer)).toBe(true);
          const id = (answer as JsonObject).id as JsonValue;
          if (id === null) expect(answer).toHaveProperty("error");
          const index = owed.findIndex((owedId) => (owedId === null ? id === null : sameId(owedId, id)));
          expect(index, `unexpected answer ${compactJson(answer)}`).not.toBe(-1);
          owed.splice(index, 1);
        }
        expect(owed).toEqual([]);
      }),
      { ...PARAMS, numRuns: RUNS.ndjson },
    );
    await probeNdjson(-1);
    expect(ndjson.pending()).toBe(0);
    expect(ndjson.alive()).toBe(true);
    expect(await snapshot()).toBe(before);
  }, 60_000);

  it("answers every fuzzed Content-Length frame, resynchronises after garbled ones, and changes nothing", async () => {
    const before = await snapshot();
    // Completes any body a lying length still waits for; the rest is skipped up to the probe's header.
    const filler = "x".repeat(MAX_BODY_BYTES + 64);
    let n = 0;
    await fc.assert(
      fc.asyncProperty(hostileFrames(tools, MAX_BODY_BYTES), async (frame: HostileFrame) => {
        n++;
        framed.write(frame.bytes);
        if (!frame.clean) framed.write(filler);
        const answers = await probeFramed(n);
        for (const answer of answers) expectDgResponse(answer);
        if (!frame.clean) {
          expect(answers.length).toBeGreaterThanOrEqual(1);
          return;
        }
        expect(answers).toHaveLength(1);
        expectDgAnswer(frame.body, answers[0] as JsonValue);
        if (frame.body.length > MAX_BODY_BYTES) {
          expect((answers[0] as { error: { code: bigint } }).error.code).toBe(-32070n);
        }
      }),
      { ...PARAMS, numRuns: RUNS.framed },
    );
    expect(framed.pending()).toBe(0);
    expect(framed.alive()).toBe(true);
    expect(await snapshot()).toBe(before);
  }, 60_000);
});
