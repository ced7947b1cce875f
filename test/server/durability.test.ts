import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import BetterSqlite from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { parseJson } from "../../src/json/parse.js";
import type { JsonObject, JsonValue } from "../../src/json/value.js";
import { compactJson } from "../../src/json/write.js";
import { callTool as call } from "../support/rpc.js";
import { RELEASE_GATE } from "../support/scenarios.js";
import { configDir, type ServerProcess, serveDirectory } from "../support/server-process.js";
import { until } from "../support/until.js";

const CONFIG = `
[server]
transport = "http"
bind = "127.0.0.1:0"

[run_state_store]
type = "sqlite"
path = "state/runs.db"

[schema_registry]
type = "sqlite"
path = "state/registry.db"
[schema_registry.acl]
allow_local_only = true

[evidence]
allow_raw_values = true
require_provider_opt_in = false

[[providers]]
name = "time"
type = "builtin"
`;

const dirs: string[] = [];
const running: ServerProcess[] = [];
afterAll(async () => {
  await Promise.all(running.map((server) => server.stop("SIGKILL")));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function stateDir(): string {
  const dir = configDir(CONFIG);
  dirs.push(dir);
  return dir;
}

async function serve(dir: string): Promise<ServerProcess> {
  const server = await serveDirectory(dir);
  running.push(server);
  return server;
}

const spec = parseJson(RELEASE_GATE.replace('"timestamp": 5', '"timestamp": 1000000000')) as JsonObject;
const run = { run_id: "run-1", tenant_id: 1n, namespace_id: 2n };
const logical = (value: number) => ({ kind: "logical", value: BigInt(value) });
const nextArgs = (trigger: string, time: number) => ({
  scenario_id: "release-gate",
  request: { ...run, trigger_id: trigger, agent_id: "agent", time: logical(time) },
});

async function defineAndStart(server: ServerProcess): Promise<void> {
  await call(server, "scenario_define", { spec });
  await call(server, "scenario_start", {
    scenario_id: "release-gate",
    run_config: { ...run, scenario_id: "release-gate", dispatch_targets: [], policy_tags: [] },
    started_at: logical(1),
    issue_entry_packets: true,
  });
}

/** The decisions of the run as recorded in an exported runpack. */
async function recordedDecisions(server: ServerProcess, dir: string): Promise<JsonObject[]> {
  const output = join(dir, `export-${Date.now()}`);
  await call(server, "runpack_export", {
    scenario_id: "release-gate",
    ...run,
    output_dir: output,
    generated_at: logical(1),
    include_verification: true,
  });
  return parseJson(readFileSync(join(output, "artifacts/decisions.json"), "utf8")) as JsonObject[];
}

describe("durable state behind the real server", () => {
  it(
    "survives a restart: scenarios, runs and schemas are intact and the run continues",
    { timeout: 60_000 },
    async () => {
      const dir = stateDir();
      const first = await serve(dir);
      await defineAndStart(first);
      await call(first, "scenario_next", nextArgs("t-1", 3));
      const record = {
        tenant_id: 1n,
        namespace_id: 2n,
        schema_id: "s",
        version: "1",
        schema: { type: "object" },
        created_at: logical(1),
      };
      await call(first, "schemas_register", { record });
      expect(await first.stop()).toBe(0);

      const second = await serve(dir);
      expect(await call(second, "scenarios_list", { tenant_id: 1n, namespace_id: 2n })).toMatchObject({
        items: [{ scenario_id: "release-gate" }],
      });
      expect(
        await call(second, "schemas_get", { tenant_id: 1n, namespace_id: 2n, schema_id: "s", version: "1" }),
      ).toMatchObject({
        record: { schema: { type: "object" } },
      });
      const status = await call(second, "scenario_status", {
        scenario_id: "release-gate",
        request: { ...run, requested_at: logical(5) },
      });
      expect(status).toMatchObject({
        status: "active",
        last_decision: { decision_id: "decision-2", trigger_id: "t-1" },
      });
      const next = await call(second, "scenario_next", nextArgs("t-2", 6));
      expect(next.decision).toMatchObject({ decision_id: "decision-3", seq: 3n });
      await second.stop();
    },
  );

  it("loses no acknowledged decision when killed with SIGKILL during a burst", { timeout: 60_000 }, async () => {
    const dir = stateDir();
    const server = await serve(dir);
    await defineAndStart(server);
    const acknowledged = new Map<string, JsonValue>();
    let stop = false;
    const burst = async (lane: number) => {
      for (let i = 0; !stop; i++) {
        const trigger = `lane${lane}-${i}`;
        try {
          const result = await call(server, "scenario_next", nextArgs(trigger, 10 + i));
          acknowledged.set(trigger, (result.decision as JsonObject).decision_id as string);
        } catch {
          return;
        }
      }
    };
    const lanes = Promise.all([0, 1, 2, 3].map(burst));
    await until(() => acknowledged.size > 20);
    await server.stop("SIGKILL");
    stop = true;
    await lanes;
    expect(acknowledged.size).toBeGreaterThan(20);

    const restarted = await serve(dir);
    const decisions = await recordedDecisions(restarted, dir);
    expect(decisions.map((decision) => decision.seq)).toEqual(decisions.map((_, i) => BigInt(i + 1)));
    const recorded = new Map(decisions.map((decision) => [decision.trigger_id, decision.decision_id]));
    for (const [trigger, decisionId] of acknowledged) expect(recorded.get(trigger), trigger).toBe(decisionId);
    // Re-sending an acknowledged trigger still replays its recorded decision (D4).
    for (const [trigger, decisionId] of [...acknowledged].slice(0, 3)) {
      const index = Number(trigger.slice(trigger.indexOf("-") + 1));
      const replay = await call(restarted, "scenario_next", nextArgs(trigger, 10 + index));
      expect((replay.decision as JsonObject).decision_id).toBe(decisionId);
    }
    expect(decisions.length).toBeGreaterThanOrEqual(acknowledged.size + 1);
    await restarted.stop();
  });

  it(
    "has the audit lines of every answered request on disk when killed with SIGKILL",
    { timeout: 60_000 },
    async () => {
      const dir = configDir(`${CONFIG}\n[server.audit]\nenabled = true\npath = "logs/audit.jsonl"\n`);
      dirs.push(dir);
      const server = await serve(dir);
      await defineAndStart(server);
      const answered: string[] = [];
      let stop = false;
      const burst = async (lane: number) => {
        for (let i = 0; !stop; i++) {
          try {
            const response = await fetch(`${server.url}/rpc`, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: compactJson({
                jsonrpc: "2.0",
                id: 1n,
                method: "tools/call",
                params: { name: "scenario_next", arguments: nextArgs(`lane${lane}-${i}`, 10 + i) },
              }),
            });
            await response.text();
            answered.push(response.headers.get("x-server-correlation-id") ?? "missing");
          } catch {
            return;
          }
        }
      };
      const lanes = Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map(burst));
      await until(() => answered.length > 20);
      await server.stop("SIGKILL");
      stop = true;
      await lanes;
      expect(answered.length).toBeGreaterThan(20);
      const lines = readFileSync(join(dir, "logs/audit.jsonl"), "utf8")
        .split("\n")
        .filter((line) => line !== "")
        .map((line) => JSON.parse(line) as { event: string; server_correlation_id: string });
      const logged = (event: string) =>
        new Set(lines.filter((line) => line.event === event).map((line) => line.server_correlation_id));
      const [requests, authz] = [logged("mcp_request"), logged("tenant_authz")];
      for (const id of answered) {
        expect(requests.has(id), id).toBe(true);
        expect(authz.has(id), id).toBe(true);
      }
    },
  );

  it("fails closed, naming the run, when a stored record was altered", { timeout: 60_000 }, async () => {
    const dir = stateDir();
    const server = await serve(dir);
    await defineAndStart(server);
    await call(server, "scenario_next", nextArgs("t-1", 3));
    await server.stop();

    const db = new BetterSqlite(join(dir, "state/runs.db"));
    const row = db
      .prepare(
        "SELECT run_pk, position, record_json FROM run_records WHERE kind = 'decision' ORDER BY position DESC LIMIT 1",
      )
      .get() as {
      run_pk: number;
      position: number;
      record_json: Buffer;
    };
    const tampered = Buffer.from(row.record_json.toString("utf8").replace('"hold"', '"hole"'));
    db.prepare("UPDATE run_records SET record_json = ? WHERE run_pk = ? AND position = ?").run(
      tampered,
      row.run_pk,
      row.position,
    );
    db.close();

    const restarted = await serve(dir);
    const failure = await call(restarted, "scenario_status", {
      scenario_id: "release-gate",
      request: { ...run, requested_at: logical(5) },
    }).catch((error: { code: bigint; message: string }) => error);
    expect(failure).toMatchObject({ code: -32030n });
    expect((failure as { message: string }).message).toMatch(/^run state corrupt: 1\/2\/run-1: /);
    await expect(recordedDecisions(restarted, dir)).rejects.toMatchObject({ code: -32030n });
    await restarted.stop();
  });

  it("reports not ready when its database file disappears from under it", { timeout: 30_000 }, async () => {
    const dir = stateDir();
    const server = await serve(dir);
    expect(await (await fetch(`${server.url}/readyz`)).json()).toEqual({ status: "ready" });
    rmSync(join(dir, "state/runs.db"));
    const response = await fetch(`${server.url}/readyz`);
    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({ status: "not_ready" });
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    await server.stop();
  });

  it("two servers on one database file never fork a run or repeat a sequence number", { timeout: 60_000 }, async () => {
    const dir = stateDir();
    const [a, b] = [await serve(dir), await serve(dir)];
    await defineAndStart(a);
    await call(b, "scenario_define", { spec });
    const sends = Array.from({ length: 40 }, (_, i) =>
      call(i % 2 === 0 ? a : b, "scenario_next", nextArgs(`t-${i}`, 10 + i)),
    );
    const results = await Promise.all(sends);
    const seqs = results.map((result) => (result.decision as JsonObject).seq as bigint);
    expect(new Set(seqs).size).toBe(40);
    const decisions = await recordedDecisions(b, dir);
    expect(decisions.map((decision) => decision.seq)).toEqual(Array.from({ length: 41 }, (_, i) => BigInt(i + 1)));
    await Promise.all([a.stop(), b.stop()]);
  });
});
