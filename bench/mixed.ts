import { mkdirSync } from "node:fs";
import { Agent } from "node:http";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { ScenarioSpec } from "../src/core/spec/schema.js";
import { decode } from "../src/core/wire/common.js";
import { benchDialect, callTool, logical, RPC, RUN, SCENARIO_ID, SPEC, type Target } from "./http.js";
import { CONNECTIONS } from "./load.js";
import type { BenchResult } from "./measure.js";
import { openPlane, RunDriver } from "./plane.js";

/** Decisions in the run exported and verified beside the load (issue 16: a 10,000-decision runpack). */
const LONG_RUN_DECISIONS = 10_000;
const LONG_RUN_ID = "mixed-long";
/** How much `scenario_next`'s p99 may grow while the long work runs beside it. */
export const MIXED_P99_TARGET = 1.5;

/**
 * Writes the long run of the release gate into the server's run store at `<dir>/state/runs.db` before the server
 * starts (untimed setup): through the control plane in this process, with synchronous=NORMAL (faster; durability
 * is not what is measured here), so that it does not take one fsync per decision.
 */
export async function buildLongRun(dir: string): Promise<void> {
  const start = performance.now();
  mkdirSync(join(dir, "state"), { recursive: true });
  const { db, plane } = openPlane(join(dir, "state", "runs.db"), "normal", {}, decode(ScenarioSpec, SPEC, "spec"));
  try {
    const driver = new RunDriver(plane, LONG_RUN_ID);
    await driver.start();
    for (let i = 0; i < LONG_RUN_DECISIONS; i++) await driver.next();
  } finally {
    db.close();
  }
  const seconds = ((performance.now() - start) / 1000).toFixed(1);
  console.log(`mixed: built a run of ${LONG_RUN_DECISIONS} decisions in ${seconds} s (setup, not measured)`);
}

/**
 * Long work beside the decision path, on the same server: `scenario_next` over `/rpc` at `CONNECTIONS` connections
 * first alone, then while `runpack_export` and `runpack_verify` of the run of 10,000 decisions `buildLongRun` wrote
 * repeat one after the other on one more connection.
 */
export async function benchMixed(server: Target): Promise<BenchResult[]> {
  const alone = await benchDialect(server, RPC, CONNECTIONS, "mixed-alone");
  const work = repeatLongWork(server);
  const beside = await benchDialect(server, RPC, CONNECTIONS, "mixed-beside");
  const { exports, verifies } = await work.stop();
  const decisions = LONG_RUN_DECISIONS.toLocaleString("en");
  return [
    { ...alone, name: "mixed: scenario_next over /rpc alone", section: "mixed" },
    {
      ...beside,
      name:
        `mixed: scenario_next over /rpc beside runpack_export and runpack_verify of a ${decisions}-decision run ` +
        `(${exports.length} exports, mean ${mean(exports)} s; ${verifies.length} verifies, mean ${mean(verifies)} s)`,
      section: "mixed",
    },
  ];
}

/** Exports and verifies the long run, one call after the other on one connection, until stopped. */
function repeatLongWork(server: Target) {
  const exports: number[] = [];
  const verifies: number[] = [];
  let stopping = false;
  const timed = async (into: number[], call: () => Promise<unknown>) => {
    const start = performance.now();
    await call();
    into.push(performance.now() - start);
  };
  const exportArgs = {
    ...RUN,
    scenario_id: SCENARIO_ID,
    run_id: LONG_RUN_ID,
    output_dir: null,
    manifest_name: null,
    generated_at: logical(0),
    include_verification: false,
  };
  // Where `runpack_export` without `output_dir` writes the run, relative to the runpack root.
  const runpackDir = `tenant/${RUN.tenant_id}/namespace/${RUN.namespace_id}/scenario/${SCENARIO_ID}/run/${LONG_RUN_ID}`;
  const verifyArgs = { runpack_dir: runpackDir, manifest_path: "manifest.json" };
  const loop = (async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      while (!stopping) {
        await timed(exports, () => callTool(server, RPC, "runpack_export", exportArgs, agent));
        await timed(verifies, async () => {
          const verified = await callTool(server, RPC, "runpack_verify", verifyArgs, agent);
          if (verified.status !== "pass") throw new Error(`mixed: runpack_verify did not pass: ${verified.status}`);
        });
      }
    } finally {
      agent.destroy();
    }
  })();
  return {
    async stop() {
      stopping = true;
      await loop;
      return { exports, verifies };
    },
  };
}

const mean = (ms: number[]) => (ms.reduce((sum, value) => sum + value, 0) / ms.length / 1000).toFixed(2);
