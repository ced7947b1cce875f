import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ControlPlane } from "../../src/core/run/control-plane.js";
import { parseJson } from "../../src/json/parse.js";
import type { JsonObject } from "../../src/json/value.js";
import { openSqliteDatabase } from "../../src/store/sqlite/database.js";
import { SqliteRunStateStore } from "../../src/store/sqlite/run-state.js";
import { logical, nextRequest, RELEASE_GATE, runConfig, specFrom } from "../support/scenarios.js";
import { configDir, type ServerProcess, serveDirectory } from "../support/server-process.js";
import { TimeEvidence } from "../support/time-evidence.js";
import { callTool } from "../support/tool-call.js";

/*
 * A long runpack export or verification on a real server must not stall everyone else: while one runs, other
 * callers' `scenario_status` requests keep being answered, before the long call answers.
 */

const DECISIONS = 2_000;
const RUN = { tenant_id: 1n, namespace_id: 2n, run_id: "long" };
/** The release gate waiting for a time far in the future: every trigger is a recorded hold. */
const SPEC = RELEASE_GATE.replace('"timestamp": 5', '"timestamp": 1000000000');
/** Status callers polling at the same time, each one request after the other. */
const POLLERS = 4;

const CONFIG = `
[server]
transport = "http"
bind = "127.0.0.1:0"
[run_state_store]
type = "sqlite"
path = "state/runs.db"
journal_mode = "wal"
sync_mode = "normal"
[[providers]]
name = "time"
type = "builtin"
`;

let server: ServerProcess;
let dir: string;

beforeAll(async () => {
  dir = configDir(CONFIG);
  await writeLongRun(join(dir, "state"));
  server = await serveDirectory(dir);
  await callTool(server, "scenario_define", { spec: parseJson(SPEC) });
  // The first read of a run in a server process checks it; done here, so the pollers below read a checked run.
  await status(0);
}, 120_000);

function status(requestedAt: number): Promise<JsonObject> {
  return callTool(server, "scenario_status", {
    scenario_id: "release-gate",
    request: { ...RUN, requested_at: logical(requestedAt) },
  });
}

/**
 * Writes the run into the server's SQLite file before the server starts: through the control plane in this process,
 * which is much faster than a request (and an fsync) per decision.
 */
async function writeLongRun(stateDir: string): Promise<void> {
  mkdirSync(stateDir);
  const db = openSqliteDatabase({
    path: join(stateDir, "runs.db"),
    journal_mode: "wal",
    sync_mode: "normal",
    busy_timeout_ms: 5000,
  });
  try {
    const plane = new ControlPlane(specFrom(SPEC), {
      store: new SqliteRunStateStore(db),
      evidence: new TimeEvidence(),
    });
    await plane.start(runConfig({ run_id: RUN.run_id, dispatch_targets: [] }), logical(1), false);
    for (let i = 2; i < DECISIONS + 2; i++) {
      const { result } = await plane.next(nextRequest(`t-${i}`, i, { run_id: RUN.run_id }));
      expect(result.decision.outcome.kind).toBe("hold");
    }
  } finally {
    db.close();
  }
}

afterAll(async () => {
  await server?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

/**
 * Runs `longCall` while `POLLERS` callers ask for the run's status, one request after the other each, until it
 * answers; returns how many status answers arrived before the long call's answer.
 */
async function statusAnswersDuring(
  longCall: () => Promise<JsonObject>,
): Promise<{ output: JsonObject; before: number }> {
  let finished = false;
  let before = 0;
  const poll = async () => {
    for (let i = 0; !finished; i++) {
      const answer = await status(i);
      expect(answer.status).toBe("active");
      if (!finished) before++;
    }
  };
  const pollers = Array.from({ length: POLLERS }, poll);
  const output = await longCall();
  finished = true;
  await Promise.all(pollers);
  return { output, before };
}

describe(`a run of ${DECISIONS} decisions`, () => {
  it("is exported and verified while other callers keep being answered", async () => {
    const exported = await statusAnswersDuring(() =>
      callTool(server, "runpack_export", {
        scenario_id: "release-gate",
        ...RUN,
        output_dir: "long-runpack",
        generated_at: logical(0),
        include_verification: false,
      }),
    );
    expect((exported.output.manifest as JsonObject).run_id).toBe("long");
    expect(exported.before).toBeGreaterThanOrEqual(POLLERS);

    const verified = await statusAnswersDuring(() =>
      callTool(server, "runpack_verify", { runpack_dir: "long-runpack", manifest_path: "manifest.json" }),
    );
    expect(verified.output.status).toBe("pass");
    expect(verified.before).toBeGreaterThanOrEqual(POLLERS);
  }, 120_000);
});
