import pg from "pg";
import { openPostgresDatabase } from "../src/store/postgres/database.js";
import { PostgresRunStateStore } from "../src/store/postgres/run-state.js";
import { type PostgresCluster, postgresMissing, startPostgres } from "../test/support/postgres.js";
import { startServerProcess } from "../test/support/server-process.js";
import { benchDialect, CONFIG, defineScenario, RPC, type Target } from "./http.js";
import { CONNECTIONS, startCpuMeter, track } from "./load.js";
import { type BenchResult, benchSeconds, summarize } from "./measure.js";
import { planeOn } from "./plane.js";
import { buildHistories, measureHistoryCost } from "./store.js";

/*
 * PostgreSQL rows of `npm run bench` (issue 17), when PostgreSQL is installed: `scenario_next` over `/rpc` at 32
 * connections against one and against two replicas sharing one database, as ratios to raw single-row PostgreSQL
 * commits measured in the same run on the same throwaway cluster (fsync and synchronous_commit on).
 */

export const PG_COMMITS_NAME = `baseline: raw PostgreSQL single-row commits (pg, ${CONNECTIONS} connections)`;
const replicasName = (count: number) =>
  `HTTP /rpc on PostgreSQL: scenario_next, ${CONNECTIONS} connections over ${count} replica${count > 1 ? "s" : ""}`;
/** The one-replica row's name, before the ratio added to it. */
export const PG_ONE_REPLICA_NAME = replicasName(1);

/** The HTTP benchmark's server configuration with its run state and registries in PostgreSQL at `url`. */
function postgresConfig(url: string): string {
  const stores = `[run_state_store]\ntype = "postgres"\nurl = "${url}"\n[schema_registry]\ntype = "postgres"\nurl = "${url}"\n`;
  return CONFIG.replace(/\[run_state_store\][\s\S]*?sync_mode = "full"\n/, stores);
}

/** One 1 KiB row per transaction (autocommit), on `CONNECTIONS` connections in a closed loop. */
async function benchCommits(url: string): Promise<BenchResult> {
  const pool = new pg.Pool({ connectionString: url, max: CONNECTIONS });
  try {
    await pool.query("CREATE TABLE bench_rows (id bigserial PRIMARY KEY, body bytea NOT NULL)");
    const row = Buffer.alloc(1024, 0x61);
    const insert = () => pool.query("INSERT INTO bench_rows (body) VALUES ($1)", [row]);
    const warmUpUntil = performance.now() + 1000;
    while (performance.now() < warmUpUntil) await Promise.all(Array.from({ length: CONNECTIONS }, insert));
    const latencies: number[] = [];
    const meter = startCpuMeter();
    const start = performance.now();
    const deadline = start + benchSeconds() * 1000;
    const lane = async () => {
      while (performance.now() < deadline) {
        const sentAt = performance.now();
        await insert();
        latencies.push(performance.now() - sentAt);
      }
    };
    await Promise.all(Array.from({ length: CONNECTIONS }, lane));
    const seconds = (performance.now() - start) / 1000;
    const result = summarize(PG_COMMITS_NAME, 1, latencies, seconds);
    return { ...result, cpu: meter(seconds, result.operations) };
  } finally {
    await pool.end();
  }
}

/** `count` replicas of the server on the database at `url`, each with its own directory. */
async function replicas(url: string, count: number) {
  const started = [];
  for (let i = 0; i < count; i++) {
    const child = await startServerProcess(postgresConfig(url));
    track(child.child, child.dir);
    started.push(child);
  }
  return started;
}

/** `scenario_next` at `CONNECTIONS` connections split over the replicas, each connection driving its own run. */
async function benchReplicas(cluster: PostgresCluster, count: number): Promise<BenchResult> {
  const url = await cluster.createDatabase(`dg_bench_${count}`);
  const children = await replicas(url, count);
  try {
    const targets: Target[] = children.map((child) => ({ url: child.url, pid: child.child.pid ?? 0 }));
    await defineScenario(targets[0] as Target);
    const parts = await Promise.all(
      targets.map((target, index) => benchDialect(target, RPC, CONNECTIONS / count, `pg${count}-r${index}`)),
    );
    const operations = parts.reduce((sum, part) => sum + part.operations, 0);
    const perSecond = parts.reduce((sum, part) => sum + part.operationsPerSecond, 0);
    return {
      name: replicasName(count),
      operationsPerSecond: perSecond,
      unitsPerSecond: perSecond,
      // Over several replicas: the slowest replica's percentiles.
      p50Ms: Math.max(...parts.map((part) => part.p50Ms)),
      p99Ms: Math.max(...parts.map((part) => part.p99Ms)),
      operations,
      // One replica's CPU accounting is the whole picture: its server, this load generator and PostgreSQL.
      ...(count === 1 ? { cpu: parts[0]?.cpu } : {}),
    };
  } finally {
    await Promise.all(children.map((child) => child.stop()));
  }
}

/** Short runs for D10 on PostgreSQL (fewer than on SQLite: building them costs a round trip per trigger). */
const SHORT_RUNS = 100;

/** D10 on PostgreSQL: the control plane on a PostgreSQL run store, no transport (as the SQLite rows). */
async function benchHistoryCost(cluster: PostgresCluster): Promise<BenchResult[]> {
  const db = await openPostgresDatabase({ url: await cluster.createDatabase("dg_bench_history") });
  try {
    const plane = planeOn(new PostgresRunStateStore(db));
    await buildHistories(plane, SHORT_RUNS);
    return await measureHistoryCost(plane, SHORT_RUNS, "PostgreSQL store");
  } finally {
    await db.close();
  }
}

/** The PostgreSQL rows, or none (with a line on the console) when PostgreSQL is not installed. */
export async function benchPostgres(): Promise<BenchResult[]> {
  const missing = postgresMissing();
  if (missing !== undefined) {
    console.log(`PostgreSQL benchmarks skipped: ${missing}`);
    return [];
  }
  const cluster = await startPostgres();
  try {
    const commits = await benchCommits(await cluster.createDatabase("dg_bench_commits"));
    const results = [await benchReplicas(cluster, 1), await benchReplicas(cluster, 2)];
    const ratio = (result: BenchResult) => (result.unitsPerSecond / commits.unitsPerSecond).toFixed(2);
    return [
      commits,
      ...results.map((result) => ({ ...result, name: `${result.name} — ${ratio(result)}× raw PostgreSQL commits` })),
      ...(await benchHistoryCost(cluster)),
    ];
  } finally {
    await cluster.destroy();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const result of await benchPostgres()) {
    console.log(
      `${result.name}: ${result.operationsPerSecond.toFixed(0)} ops/s, p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms`,
    );
  }
}
