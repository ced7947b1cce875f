import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashCanonical } from "../../src/json/hash.js";
import type { JsonObject, JsonValue } from "../../src/json/value.js";
import { type ServerProcess, startServerProcess } from "../support/server-process.js";
import { callTool as call } from "../support/tool-call.js";

/*
 * Evidence providers against hostile questions, on a real server: JSONPath regexes that make a backtracking
 * engine run for ages, JSONPath queries whose work grows with the square of a large document, and the env
 * provider's startup warning.
 */

/** `(a|a)*` on this takes a backtracking RegExp about 2^40 steps: the server would not answer for hours. */
const ATTACK_SUBJECT = `${"a".repeat(40)}!`;
const DOCUMENT = {
  items: [{ s: ATTACK_SUBJECT }],
  services: [{ name: "api-7" }, { name: "web" }],
  logs: ["x".repeat(16_385)],
};

const JSON_PROVIDER = `
[[providers]]
name = "json"
type = "builtin"
config = { root = "./evidence", root_id = "evidence" }
`;

const servers: ServerProcess[] = [];
afterAll(async () => {
  // SIGKILL: a server stuck in a regex would never run its SIGTERM handler.
  await Promise.all(servers.map((server) => server.stop("SIGKILL")));
});

async function serve(config: string, setup: (dir: string) => void = () => {}): Promise<ServerProcess> {
  const server = await startServerProcess(config, [], setup);
  servers.push(server);
  return server;
}

/**
 * Runs `work` while polling `/healthz`: every poll (at least one, sent once the server has the work) must be
 * answered with 200 within a second. Resolves to the work's result.
 */
async function withHealthPolling<T>(server: ServerProcess, work: Promise<T>): Promise<T> {
  let finished = false;
  const settled = work.finally(() => {
    finished = true;
  });
  settled.catch(() => {}); // reported to the caller, who awaits `settled`, unless a poll fails first
  await sleep(100);
  do {
    const started = performance.now();
    const response = await fetch(`${server.url}/healthz`, { signal: AbortSignal.timeout(1_000) });
    expect(response.status).toBe(200);
    expect(performance.now() - started).toBeLessThan(1_000);
    await sleep(50);
  } while (!finished);
  return settled;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const logical = (value: number) => ({ kind: "logical", value: BigInt(value) });

const CONTEXT = {
  tenant_id: 1n,
  namespace_id: 2n,
  run_id: "probe",
  scenario_id: "probe",
  stage_id: "probe",
  trigger_id: "probe",
  trigger_time: logical(1),
};

const jsonQuery = (jsonpath: string, file = "doc.json") => ({
  provider_id: "json",
  check_id: "path",
  params: { file, jsonpath },
});

const evidenceQuery = async (server: ServerProcess, jsonpath: string, file?: string) =>
  (await call(server, "evidence_query", { query: jsonQuery(jsonpath, file), context: CONTEXT })).result as JsonObject;

/** A one-stage scenario whose gate needs `jsonpath` to select `expected` (from `file`, default doc.json). */
function gateOn(scenarioId: string, jsonpath: string, expected: JsonValue, file?: string): JsonObject {
  return {
    scenario_id: scenarioId,
    namespace_id: 2n,
    spec_version: "v1",
    default_tenant_id: null,
    policies: [],
    schemas: [],
    conditions: [
      { condition_id: "selected", query: jsonQuery(jsonpath, file), comparator: "equals", expected, policy_tags: [] },
    ],
    stages: [
      {
        stage_id: "only",
        entry_packets: [],
        gates: [{ gate_id: "gate", requirement: { Condition: "selected" } }],
        advance_to: { kind: "terminal" },
        timeout: null,
        on_timeout: "fail",
      },
    ],
  };
}

/** Defines the scenario and starts a run of it. */
async function startGate(server: ServerProcess, spec: JsonObject): Promise<void> {
  const scenarioId = spec.scenario_id as string;
  await call(server, "scenario_define", { spec });
  await call(server, "scenario_start", {
    scenario_id: scenarioId,
    run_config: { ...runOf(scenarioId), scenario_id: scenarioId, dispatch_targets: [], policy_tags: [] },
    started_at: logical(1),
    issue_entry_packets: false,
  });
}

/** The agent asks for the next step: the gate is evaluated. */
function nextStep(server: ServerProcess, scenarioId: string): Promise<JsonObject> {
  return call(server, "scenario_next", {
    scenario_id: scenarioId,
    request: { ...runOf(scenarioId), trigger_id: "t-1", agent_id: "agent", time: logical(2) },
  });
}

const runOf = (scenarioId: string) => ({ run_id: `run-${scenarioId}`, tenant_id: 1n, namespace_id: 2n });

describe("JSONPath regexes on a real server", () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await serve(`[server]\ntransport = "http"\nbind = "127.0.0.1:0"\n${JSON_PROVIDER}`, (dir) => {
      mkdirSync(join(dir, "evidence"));
      writeFileSync(join(dir, "evidence", "doc.json"), JSON.stringify(DOCUMENT));
    });
  }, 60_000);

  it("answers evidence_query with catastrophic patterns promptly while /healthz stays responsive", async () => {
    const started = performance.now();
    const results = await withHealthPolling(
      server,
      Promise.all([
        evidenceQuery(server, "$.items[?match(@.s, '(a|a)*')]"),
        evidenceQuery(server, "$.items[?search(@.s, '(a|a)*b')]"),
        evidenceQuery(server, "$.items[?match(@.s, '(a*)*b')]"),
      ]),
    );
    expect(performance.now() - started).toBeLessThan(10_000);
    for (const result of results) {
      expect(result.error).toMatchObject({ code: "jsonpath_not_found" });
    }
  }, 60_000);

  it("evaluates a scenario condition with a catastrophic pattern promptly: the gate holds", async () => {
    await startGate(server, gateOn("regex-attack", "$.items[?match(@.s, '(a|a)*')].s", ATTACK_SUBJECT));
    const next = await withHealthPolling(server, nextStep(server, "regex-attack"));
    expect(next.status).toBe("active");
  }, 60_000);

  it("still evaluates ordinary match() and search() (positive control)", async () => {
    expect(await evidenceQuery(server, "$.services[?match(@.name, 'api-[0-9]+')].name")).toMatchObject({
      error: null,
      evidence_anchor: { anchor_type: "file_path_rooted" },
    });
    expect(await evidenceQuery(server, "$.services[?search(@.name, 'x')].name")).toMatchObject({
      error: { code: "jsonpath_not_found" },
    });
    expect(await evidenceQuery(server, `$.items[?match(@.s, '(a|a)*!')].s`)).toMatchObject({ error: null });
    await startGate(server, gateOn("regex-ok", "$.services[?search(@.name, '^we')].name", "web"));
    expect((await nextStep(server, "regex-ok")).status).toBe("completed");
  }, 60_000);

  it("stops at a pattern or a string beyond the regex limits with a clear error", async () => {
    expect(await evidenceQuery(server, `$.services[?search(@.name, '${"x".repeat(1001)}')]`)).toMatchObject({
      error: { code: "jsonpath_limit_exceeded", message: "jsonpath regex pattern exceeds 1000 characters" },
    });
    expect(await evidenceQuery(server, "$.logs[?search(@, 'x$')]")).toMatchObject({
      error: { code: "jsonpath_limit_exceeded", message: "jsonpath regex input exceeds 16384 characters" },
    });
  }, 60_000);
});

/** 80,000 records, just under the json provider's default max_bytes (1 MiB). */
const LARGE_DOCUMENT = JSON.stringify({ items: Array.from({ length: 80_000 }, (_, id) => ({ id })) });

describe("JSONPath evaluation on a real server", () => {
  let server: ServerProcess;
  beforeAll(async () => {
    expect(LARGE_DOCUMENT.length).toBeGreaterThan(1_000_000);
    expect(LARGE_DOCUMENT.length).toBeLessThanOrEqual(1_048_576);
    server = await serve(`[server]\ntransport = "http"\nbind = "127.0.0.1:0"\n${JSON_PROVIDER}`, (dir) => {
      mkdirSync(join(dir, "evidence"));
      writeFileSync(join(dir, "evidence", "large.json"), LARGE_DOCUMENT);
    });
  }, 60_000);

  it("answers evidence_query with quadratic queries over a 1 MiB document while /healthz stays responsive", async () => {
    const started = performance.now();
    const [descendants, comparison] = await withHealthPolling(
      server,
      Promise.all([
        // Walks the whole document once per record: 80,000 × 160,000 nodes.
        evidenceQuery(server, "$.items[?count($..*) > 0]", "large.json"),
        // Compares the whole document with itself once per record: as many node comparisons.
        evidenceQuery(server, "$.items[?$ == $]", "large.json"),
      ]),
    );
    expect(descendants.error).toEqual({
      code: "jsonpath_limit_exceeded",
      message: "jsonpath evaluation exceeds 10000000 steps",
      details: { jsonpath: "$.items[?count($..*) > 0]" },
    });
    expect(comparison.error).toEqual({
      code: "jsonpath_limit_exceeded",
      message: "jsonpath evaluation exceeds 5000 ms",
      details: { jsonpath: "$.items[?$ == $]" },
    });
    expect(performance.now() - started).toBeLessThan(30_000);
  }, 60_000);

  it("evaluates a scenario condition with a quadratic query promptly: the gate holds", async () => {
    await startGate(server, gateOn("quadratic", "$.items[?count($..*) > 0].id", 0n, "large.json"));
    const next = await withHealthPolling(server, nextStep(server, "quadratic"));
    expect(next.status).toBe("active");
  }, 60_000);

  it("still answers ordinary queries over the same document (positive control)", async () => {
    // The value itself is withheld from evidence_query (no allow_raw); its hash is not.
    expect(await evidenceQuery(server, "$.items[?@.id == 79999].id", "large.json")).toMatchObject({
      error: null,
      evidence_hash: hashCanonical(79_999n),
    });
    await startGate(server, gateOn("linear", "$.items[?count(@..*) == 1 && @.id == 79999].id", 79_999n, "large.json"));
    expect((await nextStep(server, "linear")).status).toBe("completed");
  }, 60_000);
});

describe("env provider without an allowlist", () => {
  const env = (config: string) => `\n[[providers]]\nname = "env"\ntype = "builtin"\n${config}\n`;
  const bearer = '[server.auth]\nmode = "bearer_token"\nbearer_tokens = ["t0ken"]\n';
  const http = '[server]\ntransport = "http"\nbind = "127.0.0.1:0"\n';
  const WARNING =
    "decision-gate-mcp: WARNING: providers[0] (env): no allowlist: any caller who may define a scenario can read " +
    "every environment variable of this server";

  it("warns at startup when callers authenticate with tokens", async () => {
    const server = await serve(`${http}${bearer}${env("")}`);
    expect(server.stderr()).toContain(WARNING);
  }, 60_000);

  it("does not warn with an allowlist, or under local_only (positive control)", async () => {
    const listed = await serve(`${http}${bearer}${env('config = { allowlist = ["DEPLOY_ENV"] }')}`);
    const local = await serve(`${http}${env("")}`);
    for (const server of [listed, local]) {
      expect(server.stderr()).toContain("decision-gate-mcp: INFO: security posture:");
      expect(server.stderr()).not.toContain("(env): no allowlist");
    }
  }, 60_000);
});
