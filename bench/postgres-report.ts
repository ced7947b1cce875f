import { cpus } from "node:os";
import { ECHO_NAME } from "./http.js";
import { wrap } from "./http-report.js";
import type { BenchResult } from "./measure.js";
import { PG_COMMITS_NAME, PG_ONE_REPLICA_NAME } from "./postgres.js";

/** Issue 17's target: `scenario_next` over `/rpc` with one replica at this share of raw PostgreSQL commits. */
const TARGET_RATIO = 0.5;

const whole = (value: number) => value.toLocaleString("en", { maximumFractionDigits: 0 });
const fixed = (value: number, digits = 2) => value.toFixed(digits);

/** CPU per operation from a result's accounting: this server, the load generator, everything else (PostgreSQL). */
function perOperation(result: BenchResult) {
  const cpu = result.cpu;
  if (cpu === undefined) return undefined;
  const ms = (cores: number) => (cores * 1000) / result.unitsPerSecond;
  const server = ms(cpu.serverCores);
  const client = ms(cpu.clientCores);
  const database = ms(cpu.otherCores);
  return { server, mainThread: ms(cpu.serverMainThreadCores), client, database, total: server + client + database };
}

/** What changed on the PostgreSQL path, measured before and after on the same machine. */
const CHANGES =
  "**Changes.** A decision used to cost PostgreSQL five or six statements (the head, two trigger-id lookups, the " +
  "last receipt, the head again before the write, the write). It costs two: the head is read together with the " +
  "run's newest record, its last receipt and both lookups of the trigger id (`READ_SQL.head`), and the write is " +
  "planned on that head, guarded by its checksum. Measured back to back on this machine with one replica (the " +
  "benchmark's server and load, before and after the change, two runs each), decisions/s rose by about a third, " +
  "and the CPU per decision of both the server and PostgreSQL fell by about a quarter. Replicas that lose a race " +
  "on a run queue for it on an advisory lock instead of retrying blind (docs/STORAGE.md), which costs nothing " +
  "while there is no race. The reads by position (the newest record read with the head, and a record's link) " +
  "are written so that the primary key serves them whatever the planner knows: before, the generic plan a " +
  "prepared statement settles on in tables without statistics (a new database, as in this benchmark, until " +
  "autovacuum analyzes it) walked every record of the run for each read, so a decision cost more the longer " +
  "its run (`test/store/postgres-plans.test.ts` checks every per-call read's plan on a long run).";

/** The "PostgreSQL" section of docs/PERFORMANCE.md: issue 17's target, whether it holds, and why not. */
export function postgresSection(results: BenchResult[]): string {
  const commits = results.find((result) => result.name === PG_COMMITS_NAME);
  const one = results.find((result) => result.name.startsWith(PG_ONE_REPLICA_NAME));
  if (commits === undefined || one === undefined) return "";
  const ratio = one.unitsPerSecond / commits.unitsPerSecond;
  const verdict = ratio >= TARGET_RATIO ? "met" : `**not met** (${fixed(ratio)}×)`;
  const decision = perOperation(one);
  const commit = perOperation(commits);
  const rows = [
    ["raw single-row commit", commits, commit],
    ["`scenario_next`, one replica", one, decision],
  ] as const;
  const table = [
    "| per operation | operations/s | server CPU ms | PostgreSQL and other processes, CPU ms | load generator CPU ms | all, ms |",
    "|---|---|---|---|---|---|",
    ...rows.map(
      ([name, result, cpu]) =>
        `| ${name} | ${whole(result.unitsPerSecond)} | ${cpu === undefined ? "–" : [cpu.server, cpu.database, cpu.client, cpu.total].map((ms) => fixed(ms, 3)).join(" | ")} |`,
    ),
  ].join("\n");
  return [
    "## PostgreSQL (issue 17)",
    wrap(
      `Target: \`scenario_next\` over \`/rpc\` at 32 connections with one replica at **≥ ${TARGET_RATIO}× raw ` +
        `single-row PostgreSQL commits** measured in the same run: ${whole(one.unitsPerSecond)} decisions/s against ` +
        `${whole(commits.unitsPerSecond)} commits/s, ${verdict}. CPU from \`/proc\` during each row, per operation ` +
        '("server" is 0 for the raw commits, whose client is the load generator itself):',
    ),
    table,
    ...(ratio < TARGET_RATIO && decision !== undefined && commit !== undefined
      ? whyMissed(commits, decision, commit, serverMsOf(results)).map((paragraph) => wrap(paragraph))
      : []),
    wrap(CHANGES),
  ].join("\n\n");
}

type Cpu = NonNullable<ReturnType<typeof perOperation>>;

/** Server CPU per request in the same run: `/rpc` on SQLite (the decision path's own rows) and the Fastify echo. */
function serverMsOf(results: BenchResult[]): { sqlite: number | undefined; echo: number | undefined } {
  const rpc = results.find((result) => result.decisionPath === true && result.name.startsWith("HTTP /rpc"));
  const echo = results.find((result) => result.name === ECHO_NAME);
  return { sqlite: rpc?.cpu?.serverMsPerOperation, echo: echo?.cpu?.serverMsPerOperation };
}

/** Why the target is missed, in two paragraphs: the machine's shared cores, then one replica's own thread. */
function whyMissed(
  commits: BenchResult,
  decision: Cpu,
  commit: Cpu,
  serverMs: ReturnType<typeof serverMsOf>,
): string[] {
  const cores = cpus().length;
  const budget = (cores * 1000) / (TARGET_RATIO * commits.unitsPerSecond);
  const serverBudget = 1000 / (TARGET_RATIO * commits.unitsPerSecond);
  return [
    "**Why it is not met: one machine's CPU, shared.** The server, PostgreSQL and the load generator share this " +
      `machine's ${cores} cores. ${TARGET_RATIO}× the raw rate is ${whole(TARGET_RATIO * commits.unitsPerSecond)} ` +
      `decisions/s, which leaves ${fixed(budget, 3)} ms of the machine's CPU per decision for all three. A decision ` +
      `took ${fixed(decision.total, 3)} ms: PostgreSQL's part alone (${fixed(decision.database, 3)} ms, for a head ` +
      "read joining four tables and one statement that moves the head and inserts the decision's records, their " +
      `trigger-list entries and its receipt, all indexed) is ${fixed(decision.database / commit.database, 1)}× what ` +
      `a raw one-row commit costs it (${fixed(commit.database, 3)} ms) and ${fixed(decision.database / budget, 1)}× ` +
      "the whole budget on its own, and the server's part is " +
      `${fixed(decision.server, 3)} ms${serverMs.sqlite === undefined ? "" : ` (on SQLite, in the \`/rpc\` row above, ${fixed(serverMs.sqlite, 3)} ms)`}. ` +
      `At that cost the ${cores} cores allow at most ${whole((cores * 1000) / decision.total)} decisions/s.`,
    "**A database on cores of its own would not meet it either.** A replica decides on one thread, its main " +
      `thread, which used ${fixed(decision.mainThread, 3)} ms per decision (of the process's ` +
      `${fixed(decision.server, 3)} ms), so one replica serves at most about ${whole(1000 / decision.mainThread)} ` +
      `decisions/s however fast the database. ${TARGET_RATIO}× the raw rate needs at most ` +
      `${fixed(serverBudget, 3)} ms per decision on that thread` +
      `${serverMs.sqlite === undefined ? "" : `, where the same decision path on SQLite costs the server ${fixed(serverMs.sqlite, 3)} ms`}` +
      `${serverMs.echo === undefined ? "" : ` and the bare Fastify echo ${fixed(serverMs.echo, 3)} ms`}. ` +
      "The ratio compares a whole decision (authorization, evidence, gates, a " +
      "hash-chained record of each step, an action receipt, an audit line) with the cheapest possible transaction; " +
      "meeting it needs a decision path several times cheaper in server CPU (issue 16's analysis above), not a " +
      "faster database.",
  ];
}
