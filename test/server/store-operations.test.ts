import { execFileSync, spawn, spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import BetterSqlite from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { parseJson } from "../../src/json/parse.js";
import type { JsonObject } from "../../src/json/value.js";
import { openSqliteDatabase } from "../../src/store/sqlite/database.js";
import { callTool as call } from "../support/rpc.js";
import { RELEASE_GATE } from "../support/scenarios.js";
import { CLI_COMMAND, configDir, runCli, type ServerProcess, serveDirectory } from "../support/server-process.js";
import {
  decisionsFor,
  dropFromTriggerIndex,
  editTriggerColumn,
  forgeAdvance,
  sqliteCheck,
} from "../support/store-damage.js";

/*
 * Operating a SQLite store as operators and disks do: damaged files behind a real server, `decision-gate store
 * check` and `store backup`, the startup check, files that cannot be written, and readiness while commits fail.
 */

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

/** The same configuration with `[run_state_store] startup_check = "full"`. */
const FULL_CHECK = CONFIG.replace('path = "state/runs.db"', 'path = "state/runs.db"\nstartup_check = "full"');

function stateDir(config = CONFIG): string {
  const dir = configDir(config);
  dirs.push(dir);
  return dir;
}

const runsDb = (dir: string) => join(dir, "state/runs.db");
const configOf = (dir: string) => join(dir, "decision-gate.toml");

async function serve(dir: string): Promise<ServerProcess> {
  const server = await serveDirectory(dir);
  running.push(server);
  return server;
}

const failureOf = (promise: Promise<unknown>) =>
  promise.then(
    () => ({ code: null, message: "resolved" }),
    (error: { code: bigint; message: string }) => error,
  );

const spec = parseJson(RELEASE_GATE.replace('"timestamp": 5', '"timestamp": 1000000000')) as JsonObject;
const run = { run_id: "run-1", tenant_id: 1n, namespace_id: 2n };
const logical = (value: number) => ({ kind: "logical", value: BigInt(value) });
/** `scenario_next` asking for summary feedback, the level remote callers get. */
const nextArgs = (trigger: string, time: number) => ({
  scenario_id: "release-gate",
  request: { ...run, trigger_id: trigger, agent_id: "agent", time: logical(time) },
  feedback: "summary",
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

/** A stopped store whose run holds decisions 2..4 for t-1..t-3. */
async function heldStore(dir = stateDir()): Promise<string> {
  const server = await serve(dir);
  await defineAndStart(server);
  for (let i = 1; i <= 3; i++) await call(server, "scenario_next", nextArgs(`t-${i}`, i + 1));
  expect(await server.stop()).toBe(0);
  return dir;
}

/** A copy of `from`'s stopped store in a new directory with its own configuration. */
function copyStore(from: string, config = CONFIG): string {
  const dir = stateDir(config);
  mkdirSync(join(dir, "state"));
  for (const file of ["runs.db", "registry.db"]) copyFileSync(join(from, "state", file), join(dir, "state", file));
  return dir;
}

const storeCli = (dir: string, ...args: string[]) =>
  runCli(["store", ...args, "--config", configOf(dir)], { cwd: dir });

describe("stored state fails closed on every read", () => {
  it(
    "a decision rewritten with its own hash recomputed is not replayed to a summary-feedback caller",
    { timeout: 120_000 },
    async () => {
      const dir = await heldStore();
      const position = forgeAdvance(runsDb(dir), "t-2", "review", "ship");
      const server = await serve(dir);
      const failure = await failureOf(call(server, "scenario_next", nextArgs("t-2", 3)));
      expect(failure).toMatchObject({
        code: -32030n,
        message: `run state corrupt: 1/2/run-1: record ${position}: chain link broken`,
      });
      // Positive control: an intact decision of the same run replays.
      const replay = await call(server, "scenario_next", nextArgs("t-1", 2));
      expect(replay.decision).toMatchObject({ trigger_id: "t-1", outcome: { kind: "hold" } });
      await server.stop();
    },
  );

  it(
    "a trigger-id index missing an entry: the replay is refused naming the run, and no second decision is recorded",
    { timeout: 120_000 },
    async () => {
      const dir = await heldStore();
      dropFromTriggerIndex(runsDb(dir), "decision", "t-2");
      expect(sqliteCheck(runsDb(dir), "quick_check")).toEqual(["ok"]);
      const server = await serve(dir);
      const failure = await failureOf(call(server, "scenario_next", nextArgs("t-2", 3)));
      expect(failure).toMatchObject({
        code: -32030n,
        message:
          'run state corrupt: 1/2/run-1: trigger "t-2": the lookup index finds no decision, the trigger list decision 3',
      });
      // Positive control: a new trigger is still decided, with the next seq.
      const next = await call(server, "scenario_next", nextArgs("t-4", 5));
      expect(next.decision).toMatchObject({ decision_id: "decision-5", trigger_id: "t-4" });
      await server.stop();
      expect(decisionsFor(runsDb(dir), "t-2")).toBe(1);
    },
  );
});

describe("decision-gate store check and the startup check", () => {
  it(
    "exit 0 on a healthy store, 1 on each kind of damage, with progress only on a terminal",
    { timeout: 180_000 },
    async () => {
      const healthy = await heldStore();
      const forged = copyStore(healthy);
      forgeAdvance(runsDb(forged), "t-2", "review", "ship");
      const unindexed = copyStore(healthy);
      dropFromTriggerIndex(runsDb(unindexed), "decision", "t-2");
      const edited = copyStore(healthy);
      editTriggerColumn(runsDb(edited), "decision", "t-2", "t-9");

      const ok = await storeCli(healthy, "check");
      expect(ok).toMatchObject({
        code: 0,
        stdout: expect.stringContaining("1 runs, 15 records verified, none damaged"),
      });
      expect(ok.stdout).toContain("Store healthy.");
      expect(ok.stderr).not.toContain("checking runs");

      const damaged = await Promise.all([forged, unindexed, edited].map((dir) => storeCli(dir, "check")));
      expect(damaged.map((result) => result.code)).toEqual([1, 1, 1]);
      expect(damaged[0]?.stdout).toMatch(/run state corrupt: 1\/2\/run-1: record \d+: chain link broken/);
      expect(damaged[1]?.stdout).toMatch(/sqlite: row \d+ missing from index run_records_by_trigger/);
      expect(damaged[1]?.stdout).toMatch(/run state corrupt: 1\/2\/run-1: record \d+: trigger "t-2" not found through/);
      expect(damaged[2]?.stdout).toMatch(
        /run state corrupt: 1\/2\/run-1: record \d+ \(decision 3\): index columns do not/,
      );
      for (const result of damaged) expect(result.stdout).toContain("Store damaged:");

      // quick_check does not compare indexes with their tables: the quick check passes this file.
      expect(await storeCli(unindexed, "check", "--quick")).toMatchObject({
        code: 0,
        stdout: expect.stringContaining("Quick check passed"),
      });
    },
  );

  it(
    'startup_check = "full" refuses a damaged store, naming the file; "quick" serves it and fails closed per call',
    { timeout: 180_000 },
    async () => {
      const healthy = await heldStore();
      const full = copyStore(healthy, FULL_CHECK);
      dropFromTriggerIndex(runsDb(full), "decision", "t-2");
      const refused = await serveDirectory(full).then(
        (server) => {
          running.push(server);
          return "started";
        },
        (error: Error) => error.message,
      );
      expect(refused).toContain(`run state store damaged: ${runsDb(full)}: sqlite: row `);
      expect(refused).toContain("missing from index run_records_by_trigger");

      // The default (quick) serves the same file; the damaged lookup fails closed when a call reaches it.
      const quick = copyStore(full);
      const server = await serve(quick);
      expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
      expect(await failureOf(call(server, "scenario_next", nextArgs("t-2", 3)))).toMatchObject({ code: -32030n });
      await server.stop();

      // Positive control: a healthy store starts under the full check.
      const checked = await serve(copyStore(healthy, FULL_CHECK));
      expect((await call(checked, "scenario_next", nextArgs("t-1", 2))).decision).toMatchObject({ trigger_id: "t-1" });
      await checked.stop();
    },
  );
});

/** Root may write any file: the refusal is tested as an unprivileged user (`nobody`) then. */
const asUser = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
/** Whether that user can run the CLI from this checkout (not when it lies in a directory only root may enter). */
const canRunAsUser =
  spawnSync(CLI_COMMAND.command, [...CLI_COMMAND.args, "--version"], { cwd: tmpdir(), stdio: "ignore", ...asUser })
    .status === 0;

describe.skipIf(!canRunAsUser)("a store that cannot be written", () => {
  /** Runs `serve` until it either serves (then stops it) or exits; returns its exit code and stderr. */
  async function startAs(dir: string): Promise<{ code: number | null; stderr: string }> {
    const child = spawn(CLI_COMMAND.command, [...CLI_COMMAND.args, "serve", "--config", configOf(dir)], {
      cwd: dir,
      stdio: ["ignore", "ignore", "pipe"],
      ...asUser,
    });
    let stderr = "";
    child.stderr.on("data", (chunk) => {
      stderr += chunk.toString();
      if (stderr.includes("serving on")) child.kill("SIGTERM");
    });
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    return { code, stderr };
  }

  /** A fresh store made by this (possibly privileged) process, readable by the server's user. */
  function existingStore(): string {
    const dir = stateDir();
    mkdirSync(join(dir, "state"));
    for (const file of ["runs.db", "registry.db"]) {
      const path = join(dir, "state", file);
      openSqliteDatabase({ path, journal_mode: "wal", sync_mode: "full", busy_timeout_ms: 5000 }).close();
    }
    chmodSync(dir, 0o755);
    return dir;
  }

  it("a read-only database file is refused at startup, naming it", { timeout: 120_000 }, async () => {
    const dir = existingStore();
    chmodSync(join(dir, "state"), 0o777);
    chmodSync(runsDb(dir), 0o444);
    const { code, stderr } = await startAs(dir);
    expect(stderr).not.toContain("serving on");
    expect(code).toBe(1);
    expect(stderr).toContain(
      `run state store error: cannot write ${runsDb(dir)}: attempt to write a readonly database`,
    );
  });

  it("a database in a read-only directory is refused at startup, naming it", { timeout: 120_000 }, async () => {
    const dir = existingStore();
    for (const file of ["runs.db", "registry.db"]) chmodSync(join(dir, "state", file), 0o666);
    chmodSync(join(dir, "state"), 0o555);
    const { code, stderr } = await startAs(dir);
    expect(code).toBe(1);
    expect(stderr).toContain(`run state store error: cannot write ${runsDb(dir)}: `);
    chmodSync(join(dir, "state"), 0o755);
  });

  it("positive control: the same user is served from a writable store", { timeout: 120_000 }, async () => {
    const dir = existingStore();
    chmodSync(join(dir, "state"), 0o777);
    for (const file of ["runs.db", "registry.db"]) chmodSync(join(dir, "state", file), 0o666);
    const { stderr } = await startAs(dir);
    expect(stderr).toContain("serving on");
  });
});

describe("readiness follows whether the store can commit", () => {
  const hasPrlimit = (() => {
    try {
      execFileSync("prlimit", ["--version"], { stdio: "ignore" });
      return true;
    } catch {
      return false;
    }
  })();

  // The server's file-size limit is lowered under it (RLIMIT_FSIZE, as a full file system would stop growth), then
  // lifted again; `prlimit` changes the limit of a running process.
  it.skipIf(!hasPrlimit)(
    "/readyz answers 503 after a commit failed for lack of room, and 200 once a commit succeeds",
    { timeout: 120_000 },
    async () => {
      const dir = stateDir();
      const server = await serve(dir);
      await defineAndStart(server);
      await call(server, "scenario_next", nextArgs("t-1", 2));
      const pid = String(server.child.pid);
      const wal = statSync(`${runsDb(dir)}-wal`).size;
      execFileSync("prlimit", ["--pid", pid, `--fsize=${wal}:`]);

      const failed = await failureOf(call(server, "scenario_next", nextArgs("t-2", 3)));
      expect(failed.code === -32030n || failed.code === -32072n, failed.message).toBe(true);
      for (let probe = 0; probe < 2; probe++) {
        const response = await fetch(`${server.url}/readyz`);
        expect(response.status).toBe(503);
        expect(await response.json()).toEqual({ status: "not_ready" });
      }
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);

      execFileSync("prlimit", ["--pid", pid, "--fsize=unlimited:"]);
      expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
      const retried = await call(server, "scenario_next", nextArgs("t-2", 3));
      expect(retried.decision).toMatchObject({ trigger_id: "t-2", decision_id: "decision-3" });
      await server.stop();
    },
  );
});

describe("decision-gate store backup", () => {
  it(
    "copies a live store while triggers are being committed: the copy verifies and has every decision acknowledged before",
    { timeout: 180_000 },
    async () => {
      const dir = stateDir();
      const server = await serve(dir);
      await defineAndStart(server);
      const acknowledged: string[] = [];
      let stop = false;
      const lane = async (id: number) => {
        for (let i = 0; !stop; i++) {
          await call(server, "scenario_next", nextArgs(`lane${id}-${i}`, 10 + i));
          acknowledged.push(`lane${id}-${i}`);
        }
      };
      const lanes = Promise.all([0, 1, 2, 3].map(lane));
      while (acknowledged.length < 100) await new Promise((resolve) => setTimeout(resolve, 50));

      const before = [...acknowledged];
      const backup = join(dir, "backups/runs-copy.db");
      mkdirSync(join(dir, "backups"));
      const result = await storeCli(dir, "backup", "--to", backup);
      const during = acknowledged.length - before.length;
      stop = true;
      await lanes;
      await server.stop();

      expect(result).toMatchObject({ code: 0, stdout: expect.stringContaining(`to ${backup}`) });
      expect(result.stdout).toContain("Store healthy.");
      expect(during).toBeGreaterThan(0);
      const copy = new BetterSqlite(backup, { readonly: true });
      const recorded = new Set(
        (
          copy.prepare("SELECT trigger_id FROM run_records WHERE kind = 'decision'").all() as Array<{
            trigger_id: string;
          }>
        ).map((row) => row.trigger_id),
      );
      copy.close();
      expect(before.filter((trigger) => !recorded.has(trigger))).toEqual([]);

      // A second backup never overwrites the first.
      expect(await storeCli(dir, "backup", "--to", backup)).toMatchObject({
        code: 1,
        stderr: expect.stringContaining(`refusing to overwrite ${backup}`),
      });
    },
  );
});
