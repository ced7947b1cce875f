import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { Agent } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import BetterSqlite from "better-sqlite3";
import { parseJson } from "../src/json/parse.js";
import type { JsonObject, JsonValue } from "../src/json/value.js";
import { compactJson } from "../src/json/write.js";
import { RELEASE_GATE } from "../test/support/scenarios.js";
import { configDir, serveDirectory } from "../test/support/server-process.js";
import { type Answer, CONNECTIONS, closedLoop, type Load, post, startChildServer, track } from "./load.js";
import { type BenchResult, measure } from "./measure.js";
import { benchMixed, buildLongRun } from "./mixed.js";

const TOKEN = "bench-token-5f2c9a71d04e";
const ECHO_SERVER = fileURLToPath(new URL("echo-server.ts", import.meta.url));

/** The real server as spec §8 measures it: SQLite WAL + FULL, one bearer token, audit to a file. */
export const CONFIG = `
[server]
transport = "http"
bind = "127.0.0.1:0"
[server.auth]
mode = "bearer_token"
bearer_tokens = ["${TOKEN}"]
[[server.auth.principals]]
subject = "token:${createHash("sha256").update(TOKEN).digest("hex")}"
policy_class = "prod"
roles = [{ name = "TenantAdmin" }]
[server.audit]
enabled = true
path = "logs/audit.jsonl"
[run_state_store]
type = "sqlite"
path = "state/runs.db"
journal_mode = "wal"
sync_mode = "full"
[[providers]]
name = "time"
type = "builtin"
`;

/** The release gate with its `time.after` threshold far in the future: every `scenario_next` is a recorded hold. */
export const SPEC = parseJson(RELEASE_GATE.replace('"timestamp": 5', '"timestamp": 1000000000'));
export const SCENARIO_ID = "release-gate";

function expectStatus(answer: Answer, what: string): void {
  if (answer.status !== 200) throw new Error(`${what}: HTTP ${answer.status}: ${answer.body.slice(0, 500)}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Baselines
// ---------------------------------------------------------------------------------------------------------------

export const ECHO_NAME = `baseline: Fastify JSON echo, ${CONNECTIONS} connections (child process)`;
export const COMMITS_NAME = "baseline: raw SQLite single-row commits (better-sqlite3, WAL, FULL)";

/** Baseline A: the same bodies as `scenario_next` over `/rpc`, echoed by a bare Fastify server in a child process. */
async function benchEcho(): Promise<BenchResult> {
  const echo = await startChildServer(ECHO_SERVER);
  try {
    return await closedLoop(ECHO_NAME, echo.url, echo.pid, {
      path: "/echo",
      headers: { "content-type": "application/json" },
      body: (lane, sequence) => toolCall("scenario_next", nextArgs(`echo-${lane}`, sequence)),
      check: (answer, sent) => {
        expectStatus(answer, "echo");
        if (answer.body !== sent) throw new Error(`echo changed the body: ${answer.body.slice(0, 500)}`);
      },
    });
  } finally {
    await echo.stop();
  }
}

/** Baseline B: one 1 KiB row per transaction with better-sqlite3, WAL + synchronous=FULL, as fast as possible. */
async function benchSqliteCommits(): Promise<BenchResult> {
  const dir = mkdtempSync(join(tmpdir(), "dg-bench-commits-"));
  const db = new BetterSqlite(join(dir, "commits.db"));
  try {
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    db.exec("CREATE TABLE rows (id INTEGER PRIMARY KEY, body BLOB NOT NULL)");
    const insert = db.prepare("INSERT INTO rows (body) VALUES (?)");
    const row = Buffer.alloc(1024, 0x61);
    return await measure(COMMITS_NAME, 1, async () => {
      insert.run(row);
    });
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The decision path on the real server
// ---------------------------------------------------------------------------------------------------------------

/** A running Decision Gate server: where it listens, and its process id (for CPU and memory figures). */
export interface Target {
  url: string;
  pid: number;
}

/** Connection counts of the sweep; `CONNECTIONS` is spec §8's point, in the main table. */
const SWEEP = [1, 8, CONNECTIONS, 128];

/** How tool results come back in each dialect. */
export interface Dialect {
  path: "/rpc" | "/mcp";
  label: string;
  headers: Record<string, string>;
  /** The tool output in an answer (parsed losslessly). */
  output(answer: JsonObject): JsonObject;
}

const AUTHORIZATION = { authorization: `Bearer ${TOKEN}` };

export const RPC: Dialect = {
  path: "/rpc",
  label: "Decision Gate dialect",
  headers: { ...AUTHORIZATION, "content-type": "application/json" },
  output: (answer) => ((answer.result as JsonObject).content as Array<{ json: JsonObject }>)[0]?.json as JsonObject,
};

/** Standard MCP over Streamable HTTP: stateless, so each `tools/call` is a lone POST without `initialize`. */
const MCP: Dialect = {
  path: "/mcp",
  label: "MCP Streamable HTTP, stateless, JSON responses",
  headers: { ...AUTHORIZATION, "content-type": "application/json", accept: "application/json, text/event-stream" },
  output: (answer) => {
    const result = answer.result as JsonObject;
    if (result.isError === true) throw new Error(`tool error: ${compactJson(result)}`);
    return parseJson(((result.content as Array<{ text: string }>)[0] as { text: string }).text) as JsonObject;
  },
};

function toolCall(name: string, args: JsonValue): string {
  return compactJson({ jsonrpc: "2.0", id: 1n, method: "tools/call", params: { name, arguments: args } });
}

export const RUN = { tenant_id: 1n, namespace_id: 2n };
export const logical = (value: number) => ({ kind: "logical", value: BigInt(value) });

/** A trigger with a fresh id on `runId`; the run started at logical time 1. */
function nextArgs(runId: string, sequence: number): JsonObject {
  const trigger = {
    ...RUN,
    run_id: runId,
    trigger_id: `t-${sequence}`,
    agent_id: "bench",
    time: logical(sequence + 2),
  };
  return { scenario_id: SCENARIO_ID, request: trigger };
}

/** A `tools/call` in `dialect`, checked in full; resolves to the tool output. `agent` may keep its connection. */
export async function callTool(
  server: Target,
  dialect: Dialect,
  name: string,
  args: JsonValue,
  agent?: Agent,
): Promise<JsonObject> {
  const connection = agent ?? new Agent({ keepAlive: false });
  try {
    const answer = await post(connection, new URL(dialect.path, server.url), dialect.headers, toolCall(name, args));
    return toolOutput(dialect, answer);
  } finally {
    if (agent === undefined) connection.destroy();
  }
}

function toolOutput(dialect: Dialect, answer: Answer): JsonObject {
  expectStatus(answer, dialect.path);
  const body = parseJson(answer.body) as JsonObject;
  if (body.error !== undefined) throw new Error(`${dialect.path}: ${compactJson(body.error)}`);
  return dialect.output(body);
}

/** Marks a hold in a `scenario_next` answer in both dialects (MCP's `structuredContent` is plain JSON too). */
const HOLD = '"kind":"hold"';

/** Checks the first answer of each connection in full and the rest by status and the hold marker (cheap). */
function checkHold(dialect: Dialect): Load["check"] {
  return (answer, _sent, sequence) => {
    if (sequence === 0) {
      const output = toolOutput(dialect, answer);
      const outcome = (output.decision as JsonObject | undefined)?.outcome as JsonObject | undefined;
      if (outcome?.kind !== "hold") throw new Error(`${dialect.path}: expected a hold: ${compactJson(output)}`);
    } else if (answer.status !== 200 || !answer.body.includes(HOLD)) {
      throw new Error(`${dialect.path}: expected a hold: HTTP ${answer.status}: ${answer.body.slice(0, 500)}`);
    }
  };
}

/** Starts run `runId` of the release gate (over `/rpc`). */
async function startRun(server: Target, runId: string): Promise<void> {
  const runConfig = { ...RUN, run_id: runId, scenario_id: SCENARIO_ID, dispatch_targets: [], policy_tags: [] };
  const args = { scenario_id: SCENARIO_ID, run_config: runConfig, started_at: logical(1), issue_entry_packets: true };
  await callTool(server, RPC, "scenario_start", args);
}

/** Registers the release gate on a fresh server. */
export async function defineScenario(server: Target): Promise<void> {
  await callTool(server, RPC, "scenario_define", { spec: SPEC });
}

/**
 * Starts one run per connection (over `/rpc`; run ids start with `runPrefix`), then drives each with
 * `scenario_next` on its own connection.
 */
export async function benchDialect(
  server: Target,
  dialect: Dialect,
  connections: number,
  runPrefix = `${dialect.path.slice(1)}-c${connections}`,
): Promise<BenchResult> {
  const runId = (lane: number) => `${runPrefix}-${lane}`;
  for (let lane = 0; lane < connections; lane++) await startRun(server, runId(lane));
  const name = `HTTP ${dialect.path} (${dialect.label}): scenario_next, ${connections} connections × 1 run each`;
  const load = {
    path: dialect.path,
    headers: dialect.headers,
    body: (lane: number, sequence: number) => toolCall("scenario_next", nextArgs(runId(lane), sequence)),
    check: checkHold(dialect),
  };
  return closedLoop(name, server.url, server.pid, load, connections);
}

/** Each dialect at every connection count of the sweep, then the mixed benchmark, on one server. */
async function benchDecisionPath(): Promise<BenchResult[]> {
  const dir = configDir(CONFIG);
  await buildLongRun(dir);
  const child = await serveDirectory(dir);
  track(child.child, dir);
  const server = { url: child.url, pid: child.child.pid ?? 0 };
  try {
    await defineScenario(server);
    const results: BenchResult[] = [];
    for (const dialect of [RPC, MCP]) {
      for (const connections of SWEEP) {
        const result = await benchDialect(server, dialect, connections);
        const main = connections === CONNECTIONS;
        results.push(main ? { ...result, decisionPath: true } : { ...result, section: "sweep" });
      }
    }
    return [...results, ...(await benchMixed(server))];
  } finally {
    await child.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------------------------

const times = (ratio: number) => `${ratio < 0.1 ? ratio.toFixed(3) : ratio.toFixed(2)}×`;

/** Appends the ratios to both baselines to the name of a decision-path result. */
function withRatios(result: BenchResult, echo: BenchResult, commits: BenchResult): BenchResult {
  const ratios = [
    `${times(result.unitsPerSecond / echo.unitsPerSecond)} Fastify echo`,
    `${times(result.unitsPerSecond / commits.unitsPerSecond)} raw SQLite commits`,
  ];
  return { ...result, name: `${result.name} — ${ratios.join(", ")}` };
}

/**
 * The baselines (a Fastify JSON echo in a child process, raw SQLite commits) and `scenario_next` over `/rpc` and
 * `/mcp` against the real server in a child process, all in one run on loopback (spec §8).
 */
export async function benchHttp(): Promise<BenchResult[]> {
  const echo = await benchEcho();
  const commits = await benchSqliteCommits();
  const decisions = await benchDecisionPath();
  return [
    echo,
    commits,
    ...decisions.map((result) => (result.decisionPath === true ? withRatios(result, echo, commits) : result)),
  ];
}
