import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { parseJson } from "../../src/json/parse.js";
import type { JsonObject, JsonValue } from "../../src/json/value.js";
import { compactJson } from "../../src/json/write.js";
import { POSTGRES_MIGRATIONS } from "../../src/store/postgres/migrations.js";
import { APP_ROLE, type PostgresCluster, skipWithoutPostgres, startPostgres } from "../support/postgres.js";
import { callTool as call } from "../support/rpc.js";
import { RELEASE_GATE } from "../support/scenarios.js";
import { configDir, runCli, type ServerProcess, serveDirectory } from "../support/server-process.js";
import { generateTlsFiles, type TlsFiles } from "../support/tls.js";
import { until } from "../support/until.js";

/*
 * Several real server processes on one PostgreSQL database (issue 17): what one replica records, every other sees
 * at once; triggers on one run are serialised across replicas; replays are idempotent wherever they land; a replica
 * killed mid-burst loses nothing it acknowledged; a tampered row fails closed; a database outage is survived.
 */

const withoutPostgres = skipWithoutPostgres("multi-replica servers");

/** `url` absent: the replicas take DECISION_GATE_DATABASE_URL from their environment. */
function config(url?: string): string {
  const location = url === undefined ? "" : `url = "${url}"\n`;
  return `
[server]
transport = "http"
bind = "127.0.0.1:0"

[run_state_store]
type = "postgres"
${location}
[schema_registry]
type = "postgres"
${location}
[schema_registry.acl]
allow_local_only = true

[evidence]
allow_raw_values = true
require_provider_opt_in = false

[[providers]]
name = "time"
type = "builtin"
`;
}

let cluster: PostgresCluster;
const dirs: string[] = [];
/** Servers of one test, killed after it. */
const running: ServerProcess[] = [];
/** Two replicas most cases share (each on runs of its own), started on first use. */
let shared: { servers: [ServerProcess, ServerProcess]; database: string } | undefined;

beforeAll(async () => {
  if (!withoutPostgres) cluster = await startPostgres();
}, 60_000);
afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.stop("SIGKILL")));
  if (cluster !== undefined && !cluster.running) await cluster.start();
}, 60_000);
afterAll(async () => {
  await Promise.all(shared?.servers.map((server) => server.stop("SIGKILL")) ?? []);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  await cluster?.destroy();
}, 60_000);

/**
 * Two replicas serving one fresh database, each in a directory of its own, as on separate machines. A finds the
 * database through DECISION_GATE_DATABASE_URL, B through `url` in its file.
 */
async function replicas(): Promise<{ servers: [ServerProcess, ServerProcess]; database: string }> {
  const url = await cluster.createDatabase();
  const servers: ServerProcess[] = [];
  for (const text of [config(), config(url)]) {
    const dir = configDir(text);
    dirs.push(dir);
    servers.push(await serveDirectory(dir, [], { DECISION_GATE_DATABASE_URL: url }));
  }
  await call(servers[0] as ServerProcess, "scenario_define", { spec });
  return { servers: servers as [ServerProcess, ServerProcess], database: new URL(url).pathname.slice(1) };
}

async function sharedReplicas(): Promise<[ServerProcess, ServerProcess]> {
  shared ??= await replicas();
  return shared.servers;
}

const spec = parseJson(RELEASE_GATE.replace('"timestamp": 5', '"timestamp": 1000000000')) as JsonObject;
const run = (runId: string) => ({ run_id: runId, tenant_id: 1n, namespace_id: 2n });
const logical = (value: number) => ({ kind: "logical", value: BigInt(value) });
const nextArgs = (runId: string, trigger: string, time: number) => ({
  scenario_id: "release-gate",
  request: { ...run(runId), trigger_id: trigger, agent_id: "agent", time: logical(time) },
});
const statusArgs = (runId: string) => ({
  scenario_id: "release-gate",
  request: { ...run(runId), requested_at: logical(5) },
});

async function start(server: ServerProcess, runId: string): Promise<void> {
  await call(server, "scenario_start", {
    scenario_id: "release-gate",
    run_config: { ...run(runId), scenario_id: "release-gate", dispatch_targets: [], policy_tags: [] },
    started_at: logical(1),
    issue_entry_packets: true,
  });
}

/** The decisions of the run as an exported runpack records them (the export verifies every record and the chain). */
async function recordedDecisions(server: ServerProcess, runId: string): Promise<JsonObject[]> {
  const output = join(server.dir, `export-${runId}-${Date.now()}`);
  const exported = await call(server, "runpack_export", {
    scenario_id: "release-gate",
    ...run(runId),
    output_dir: output,
    generated_at: logical(1),
    include_verification: true,
  });
  expect(exported).toMatchObject({ report: { status: "pass" } });
  return parseJson(readFileSync(join(output, "artifacts/decisions.json"), "utf8")) as JsonObject[];
}

/** Why a server on configuration `text` did not start ("started" when it did, and is then stopped). */
async function refusal(text: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const dir = configDir(text);
  dirs.push(dir);
  return serveDirectory(dir, [], { DECISION_GATE_DATABASE_URL: "", ...env }).then(
    (server) => {
      running.push(server);
      return "started";
    },
    (error: unknown) => String(error),
  );
}

/** The JSON-RPC error of a call that must fail, with the HTTP status it came with. */
async function failure(server: ServerProcess, name: string, args: JsonValue) {
  const response = await fetch(`${server.url}/rpc`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: compactJson({ jsonrpc: "2.0", id: 1n, method: "tools/call", params: { name, arguments: args } }),
  });
  const body = parseJson(await response.text()) as JsonObject;
  return { status: response.status, error: body.error as JsonObject | undefined };
}

const readyz = async (server: ServerProcess) => (await fetch(`${server.url}/readyz`)).status;

/** The shared replicas, with run `runId` started through A and decided once (t-1). */
async function sharedRunWithOneDecision(runId: string): Promise<[ServerProcess, ServerProcess]> {
  const [a, b] = await sharedReplicas();
  await start(a, runId);
  await call(a, "scenario_next", nextArgs(runId, "t-1", 3));
  return [a, b];
}

/** `scenario_next` of t-2 on `runId` through `server`, which must fail with the retryable `-32072`: its message. */
async function refusedAsUnavailable(server: ServerProcess, runId: string): Promise<string> {
  const { status, error } = await failure(server, "scenario_next", nextArgs(runId, "t-2", 4));
  expect(status).toBe(503);
  expect(error).toMatchObject({ code: -32072n, data: { retryable: true } });
  return String(error?.message);
}

/**
 * Both replicas ready again within `withinMs`, without a restart; t-2 on `runId`, refused while the database could
 * not take it, is decided once, as the run's next decision, through either replica.
 */
async function recovered(replicas: readonly [ServerProcess, ServerProcess], runId: string, withinMs: number) {
  for (const server of replicas) await until(async () => (await readyz(server)) === 200, withinMs);
  for (const server of [...replicas].reverse()) {
    expect((await call(server, "scenario_next", nextArgs(runId, "t-2", 4))).decision).toMatchObject({ seq: 3n });
  }
}

/** Sends scenario_next with fresh trigger ids on `lanes` parallel lanes until `stop()`; the acknowledged ones. */
function burst(server: ServerProcess, runId: string, prefix: string, lanes: number) {
  const acknowledged = new Map<string, string>();
  let stopped = false;
  const lane = async (index: number) => {
    for (let i = 0; !stopped; i++) {
      const trigger = `${prefix}${index}-${i}`;
      try {
        const result = await call(server, "scenario_next", nextArgs(runId, trigger, 10 + i));
        acknowledged.set(trigger, (result.decision as JsonObject).decision_id as string);
      } catch {
        return;
      }
    }
  };
  const done = Promise.all(Array.from({ length: lanes }, (_, index) => lane(index)));
  return {
    acknowledged,
    stop: async () => {
      stopped = true;
      await done;
    },
  };
}

describe.skipIf(withoutPostgres)("replicas on one PostgreSQL database", () => {
  it("refuse to start without a database URL, or on a wrong password, naming the field and never the password; take it from PGPASSWORD", async () => {
    const url = await cluster.createDatabase();
    expect(await refusal(config(), {})).toContain(
      "postgres run_state_store requires url (or the environment variable DECISION_GATE_DATABASE_URL)",
    );
    const wrong = url.replace(cluster.password, "not-the-password-9c1f");
    const withoutPassword = url.replace(`:${cluster.password}@`, "@");
    for (const error of [
      await refusal(config(wrong), {}),
      await refusal(config(), { DECISION_GATE_DATABASE_URL: wrong }),
      await refusal(config(withoutPassword), { PGPASSWORD: "not-the-password-9c1f" }),
    ]) {
      expect(error).toMatch(/password authentication failed/);
      expect(error).toMatch(/postgres:\/\/decision_gate@127\.0\.0\.1:\d+\/dg_test_\d+/);
      expect(error).not.toContain("not-the-password-9c1f");
    }
    // The password may instead come from PGPASSWORD, kept out of the file and the URL (STORAGE.md).
    expect(await refusal(config(withoutPassword), { PGPASSWORD: cluster.password })).toBe("started");
  }, 60_000);

  it(
    "migrate a new database once when replicas start at once, and refuse to start on one a newer build migrated",
    { timeout: 90_000 },
    async () => {
      const url = await cluster.createDatabase();
      const database = new URL(url).pathname.slice(1);
      const serve = () => {
        const dir = configDir(config(url));
        dirs.push(dir);
        return serveDirectory(dir);
      };
      const [a, b, c] = await Promise.all([serve(), serve(), serve()]);
      running.push(a, b, c);
      const applied = await cluster.sql<{ version: number }>(
        "SELECT version FROM schema_migrations ORDER BY version",
        [],
        database,
      );
      expect(applied.map((row) => row.version)).toEqual(POSTGRES_MIGRATIONS.map((migration) => migration.version));
      await call(a, "scenario_define", { spec });
      for (const replica of [b, c]) {
        expect(await call(replica, "scenarios_list", { tenant_id: 1n, namespace_id: 2n })).toMatchObject({
          items: [{ scenario_id: "release-gate" }],
        });
      }

      const newer = (POSTGRES_MIGRATIONS.at(-1)?.version ?? 0) + 1;
      await cluster.sql(
        "INSERT INTO schema_migrations (version, name) VALUES ($1, 'a newer build')",
        [newer],
        database,
      );
      const refused = await refusal(config(url));
      expect(refused).toContain(
        `run state store version mismatch: unsupported schema version: ${newer} (this build supports up to ${newer - 1}; `,
      );
      expect(refused).toContain("was migrated by a newer Decision Gate)");
      expect(refused).not.toContain(cluster.password);
    },
  );

  it(
    "see at once what another recorded: define on A, start on B, trigger on A, status and runpack export on B",
    { timeout: 90_000 },
    async () => {
      const [a, b] = await sharedReplicas();
      expect(await call(b, "scenarios_list", { tenant_id: 1n, namespace_id: 2n })).toMatchObject({
        items: [{ scenario_id: "release-gate" }],
      });
      await start(b, "shared");
      const next = await call(a, "scenario_next", nextArgs("shared", "t-1", 3));
      expect(next.decision).toMatchObject({ trigger_id: "t-1", seq: 2n });
      expect(await call(b, "scenario_status", statusArgs("shared"))).toMatchObject({
        status: "active",
        last_decision: { trigger_id: "t-1", decision_id: (next.decision as JsonObject).decision_id },
      });
      expect((await recordedDecisions(b, "shared")).map((decision) => decision.trigger_id)).toEqual(["init", "t-1"]);
      const record = { schema_id: "s", version: "1", schema: { type: "object" }, created_at: logical(1) };
      await call(b, "schemas_register", { record: { tenant_id: 1n, namespace_id: 2n, ...record } });
      expect(
        await call(a, "schemas_get", { tenant_id: 1n, namespace_id: 2n, schema_id: "s", version: "1" }),
      ).toMatchObject({ record: { schema: { type: "object" } } });
    },
  );

  it(
    "serialise concurrent scenario_next on one run through both: no update lost, no seq twice",
    { timeout: 120_000 },
    async () => {
      const [a, b] = await sharedReplicas();
      await start(a, "concurrent");
      const onA = burst(a, "concurrent", "a", 8);
      const onB = burst(b, "concurrent", "b", 8);
      await until(async () => onA.acknowledged.size >= 30 && onB.acknowledged.size >= 30, 90_000);
      await Promise.all([onA.stop(), onB.stop()]);

      const decisions = await recordedDecisions(b, "concurrent");
      expect(decisions.map((decision) => decision.seq)).toEqual(decisions.map((_, i) => BigInt(i + 1)));
      const recorded = new Map(decisions.map((decision) => [decision.trigger_id, decision.decision_id]));
      for (const [trigger, decisionId] of [...onA.acknowledged, ...onB.acknowledged]) {
        expect(recorded.get(trigger), trigger).toBe(decisionId);
      }
      // The start's decision plus one per acknowledged trigger: nothing lost, nothing doubled.
      expect(decisions).toHaveLength(1 + onA.acknowledged.size + onB.acknowledged.size);
    },
  );

  it("answer a trigger replayed on the other replica idempotently, and -32009 to different content", async () => {
    const [a, b] = await sharedReplicas();
    await start(a, "replay");
    const first = await call(a, "scenario_next", nextArgs("replay", "t-1", 3));
    expect(await call(b, "scenario_next", nextArgs("replay", "t-1", 3))).toEqual(first);
    expect((await failure(b, "scenario_next", nextArgs("replay", "t-1", 4))).error).toMatchObject({
      code: -32009n,
      message: "trigger_id conflict: t-1",
    });
    expect((await recordedDecisions(a, "replay")).map((decision) => decision.trigger_id)).toEqual(["init", "t-1"]);
  }, 90_000);

  it("fail closed on a row tampered in the database, naming the run, on every replica and in store check", async () => {
    const [a, b] = await sharedReplicas();
    await start(a, "tampered");
    await call(a, "scenario_next", nextArgs("tampered", "t-1", 3));
    const storeCheck = () => runCli(["store", "check", "--config", join(b.dir, "decision-gate.toml")]);
    const healthy = await storeCheck();
    expect(healthy).toMatchObject({ code: 0, stdout: expect.stringContaining("Store healthy.") });
    expect(healthy.stdout).toMatch(
      /^postgres:\/\/decision_gate@127\.0\.0\.1:\d+\/\w+: \d+ runs, \d+ records verified, none damaged$/m,
    );
    expect(healthy.stdout).not.toContain("SQLite");
    const changed = await cluster.sql(
      `UPDATE run_records SET record_json = record_json || '\\x20'::bytea
       WHERE run_id = 'tampered' AND position = (SELECT max(position) FROM run_records WHERE run_id = 'tampered')
       RETURNING position`,
      [],
      shared?.database,
    );
    expect(changed).toHaveLength(1);
    for (const server of [a, b]) {
      const { error } = await failure(server, "scenario_status", statusArgs("tampered"));
      expect(error).toMatchObject({ code: -32030n });
      expect(String(error?.message)).toMatch(/^run state corrupt: 1\/2\/tampered: /);
      // No replica records anything on top of it.
      const next = await failure(server, "scenario_next", nextArgs("tampered", "t-2", 4));
      expect(next.error).toMatchObject({ code: -32030n });
    }
    const damaged = await storeCheck();
    expect(damaged.code).toBe(1);
    expect(damaged.stdout).toMatch(/: \d+ runs, \d+ records verified, 1 damaged$/m);
    expect(damaged.stdout).toMatch(/^ {2}run state corrupt: 1\/2\/tampered: record \d+ \(\w+ \d+\): hash mismatch$/m);
    expect(damaged.stdout).not.toContain(cluster.password);
  }, 90_000);

  it(
    "survive a database restart: not ready and fast retryable errors while it is down, then serve again by themselves",
    { timeout: 120_000 },
    async () => {
      const [a, b] = await sharedRunWithOneDecision("outage");
      expect([await readyz(a), await readyz(b)]).toEqual([200, 200]);

      await cluster.stop("fast");
      for (const server of [a, b]) {
        expect(await until(async () => (await readyz(server)) === 503, 5000)).toBeLessThan(5000);
        const started = Date.now();
        const message = await refusedAsUnavailable(server, "outage");
        expect(Date.now() - started).toBeLessThan(5000);
        expect(message).toMatch(/unavailable: postgres:\/\/decision_gate@127\.0\.0\.1:\d+\/dg_test_\d+/);
      }

      await cluster.start();
      await recovered([a, b], "outage", 15_000);
      for (const server of [a, b]) {
        expect(server.child.exitCode).toBeNull();
        expect(server.stderr()).not.toContain(cluster.password);
      }
    },
  );

  it(
    "take a database that stops taking writes (a demoted primary) as unavailable: not ready, retryable errors, nothing recorded",
    { timeout: 120_000 },
    async () => {
      const [a, b] = await sharedRunWithOneDecision("demoted");
      const readOnly = async (on: boolean) => {
        await cluster.sql(
          `ALTER SYSTEM ${on ? "SET default_transaction_read_only = on" : "RESET default_transaction_read_only"}`,
        );
        await cluster.sql("SELECT pg_reload_conf()");
      };
      await readOnly(true);
      try {
        for (const server of [a, b]) {
          await until(async () => (await readyz(server)) === 503, 10_000);
          expect(await refusedAsUnavailable(server, "demoted")).toMatch(
            /^run state store unavailable: postgres:\/\/decision_gate@127\.0\.0\.1:\d+\/dg_test_\d+: .*read-only transaction; retry later$/,
          );
        }
      } finally {
        await readOnly(false);
      }
      await recovered([a, b], "demoted", 10_000);
    },
  );

  it(
    "lose nothing acknowledged when one replica is killed mid-burst, while the other keeps serving the run",
    { timeout: 150_000 },
    async () => {
      const { servers } = await replicas();
      running.push(...servers);
      const [a, b] = servers;
      await start(a, "killed");
      const onA = burst(a, "killed", "a", 6);
      const onB = burst(b, "killed", "b", 6);
      await until(async () => onA.acknowledged.size >= 20 && onB.acknowledged.size >= 10, 90_000);
      await a.stop("SIGKILL");
      await onA.stop();
      const bBeforeKill = onB.acknowledged.size;
      await until(async () => onB.acknowledged.size >= bBeforeKill + 20, 60_000);
      await onB.stop();

      const decisions = await recordedDecisions(b, "killed");
      expect(decisions.map((decision) => decision.seq)).toEqual(decisions.map((_, i) => BigInt(i + 1)));
      const recorded = new Map(decisions.map((decision) => [decision.trigger_id, decision.decision_id]));
      for (const [trigger, decisionId] of [...onA.acknowledged, ...onB.acknowledged]) {
        expect(recorded.get(trigger), trigger).toBe(decisionId);
      }
      // A's last call may have committed without its answer arriving: at most one per lane more than acknowledged.
      expect(decisions.length - 1 - onA.acknowledged.size - onB.acknowledged.size).toBeLessThanOrEqual(6);
    },
  );
});

describe.skipIf(withoutPostgres)("a replica on a PostgreSQL server that takes TLS only", () => {
  let tlsCluster: PostgresCluster | undefined;
  let tls: TlsFiles;
  let tlsDir = "";

  beforeAll(async () => {
    tlsDir = mkdtempSync(join(tmpdir(), "dg-pg-tls-"));
    tls = generateTlsFiles(tlsDir);
    tlsCluster = await startPostgres({ tls: { certFile: tls.serverCert, keyFile: tls.serverKey } });
  }, 60_000);
  afterAll(async () => {
    await tlsCluster?.destroy();
    rmSync(tlsDir, { recursive: true, force: true });
  });

  it(
    "connects with sslmode=verify-full and its CA in sslrootcert; without TLS, or with a CA that did not sign the server, it does not start",
    { timeout: 90_000 },
    async () => {
      const server = tlsCluster as PostgresCluster;
      const url = await server.createDatabase();
      const withOptions = (options: Record<string, string>) => `${url}?${new URLSearchParams(options)}`;
      const verified = withOptions({ sslmode: "verify-full", sslrootcert: tls.caCert });
      const dir = configDir(config(verified));
      dirs.push(dir);
      const replica = await serveDirectory(dir);
      running.push(replica);
      await call(replica, "scenario_define", { spec });
      await start(replica, "over-tls");
      expect((await call(replica, "scenario_next", nextArgs("over-tls", "t-1", 3))).decision).toMatchObject({
        seq: 2n,
      });
      const [connections] = await server.sql<{ encrypted: number; plain: number }>(
        `SELECT count(*) FILTER (WHERE s.ssl)::integer AS encrypted, count(*) FILTER (WHERE NOT s.ssl)::integer AS plain
         FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.usename = $1`,
        [APP_ROLE],
      );
      expect(connections).toMatchObject({ encrypted: expect.any(Number), plain: 0 });
      expect(connections?.encrypted).toBeGreaterThan(0);

      const label = /postgres:\/\/decision_gate@127\.0\.0\.1:\d+\/dg_test_\d+/;
      const strangerCa = join(tlsDir, "stranger-ca.crt");
      // As documented (STORAGE.md): no sslmode is no TLS, and `require` verifies the certificate as verify-full does.
      for (const [options, reason] of [
        [{ sslmode: "disable" }, /no encryption/],
        [{}, /no encryption/],
        [{ sslmode: "require" }, /unable to verify the first certificate/],
        [{ sslmode: "verify-full", sslrootcert: strangerCa }, /unable to verify the first certificate/],
      ] as const) {
        const refused = await refusal(config(withOptions(options)));
        expect(refused).toMatch(reason);
        expect(refused).toMatch(label);
        expect(refused).not.toContain(server.password);
      }
    },
  );
});
