import { cpus } from "node:os";
import { COMMITS_NAME, ECHO_NAME } from "./http.js";
import { CONNECTIONS } from "./load.js";
import type { BenchResult } from "./measure.js";
import { MIXED_P99_TARGET } from "./mixed.js";

/** Spec §8's targets for the decision path over HTTP at 32 connections on a 2-core machine. */
const TARGETS = { decisionsPerSecond: 5000, p99Ms: 25 };
/** Server time per decision that the throughput target leaves on one thread. */
const BUDGET_MS = 1000 / TARGETS.decisionsPerSecond;
/** Cores used by other processes above which a run is flagged as measured on a busy machine. */
const CONTENDED_CORES = 0.25;

const whole = (value: number) => value.toLocaleString("en", { maximumFractionDigits: 0 });
const fixed = (value: number, digits = 2) => value.toFixed(digits);
/** A result's name without "baseline: " and before its first colon, e.g. "HTTP /rpc (Decision Gate dialect)". */
const label = (result: BenchResult) => result.name.replace(/^baseline: /, "").split(":")[0] ?? result.name;

/** Greedy word wrap at the width of the rest of docs/PERFORMANCE.md; `code spans` are never split. */
export function wrap(text: string, width = 115): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.match(/(?:`[^`]*`|[^\s`])+/g) ?? []) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  return [...lines, line].join("\n");
}

/** The "Targets" section of docs/PERFORMANCE.md: spec §8's targets, whether they hold, and why not. */
export function httpTargets(results: BenchResult[]): string {
  const decisionPaths = results.filter((result) => result.decisionPath === true);
  if (decisionPaths.length === 0) return "";
  const missed = decisionPaths.some(
    (result) => result.unitsPerSecond < TARGETS.decisionsPerSecond || result.p99Ms > TARGETS.p99Ms,
  );
  return [
    "## Targets (spec §8)",
    wrap(
      "`scenario_next` over HTTP (one time condition, SQLite WAL + `synchronous=FULL`, bearer auth, audit on) at " +
        `${CONNECTIONS} connections on a 2-core machine: **≥ ${whole(TARGETS.decisionsPerSecond)} decisions/s** ` +
        `and **p99 ≤ ${TARGETS.p99Ms} ms**.`,
    ),
    targetTable(decisionPaths),
    cpuTable(results),
    ...(missed ? whyMissed(results, decisionPaths) : ["Both targets are met on this machine."]),
  ].join("\n\n");
}

function targetTable(decisionPaths: BenchResult[]): string {
  const rows = decisionPaths.map((result) => {
    const rate = result.unitsPerSecond / TARGETS.decisionsPerSecond;
    const throughput = rate >= 1 ? "met" : `**not met** (${fixed(rate)}× the target)`;
    const p99 = result.p99Ms <= TARGETS.p99Ms ? "met" : `**not met** (${fixed(result.p99Ms / TARGETS.p99Ms, 1)}×)`;
    return `| ${label(result)} | ${whole(result.unitsPerSecond)} | ${fixed(result.p99Ms, 1)} | ${throughput} | ${p99} |`;
  });
  return [
    `| path | decisions/s | p99 ms | ≥ ${whole(TARGETS.decisionsPerSecond)}/s | p99 ≤ ${TARGETS.p99Ms} ms |`,
    "|---|---|---|---|---|",
    ...rows,
  ].join("\n");
}

/** Where the CPU went during the client/server rows (from /proc; cores = CPU seconds per second). */
function cpuTable(results: BenchResult[]): string {
  const rows = results.flatMap((result) => {
    const { cpu } = result;
    if (cpu === undefined || result.section !== undefined) return [];
    const cores = [cpu.serverCores, cpu.serverMainThreadCores, cpu.clientCores, cpu.otherCores];
    return [`| ${label(result)} | ${fixed(cpu.serverMsPerOperation, 3)} | ${cores.map((c) => fixed(c)).join(" | ")} |`];
  });
  return [
    wrap(
      `CPU during the HTTP rows, from \`/proc\`, in cores (CPU seconds per second; the machine has ${cpus().length}). ` +
        "The server process includes its GC and I/O threads; time its main thread spends blocked in fsync is not " +
        'CPU. "Other" is every other process on the machine during the measurement.',
    ),
    "",
    "| benchmark | server CPU ms per request | server process | server main thread | load generator | other |",
    "|---|---|---|---|---|---|",
    ...rows,
  ].join("\n");
}

/** The explanation of the measured limit, with this run's numbers: one paragraph per point. */
function whyMissed(results: BenchResult[], decisionPaths: BenchResult[]): string[] {
  const primary = decisionPaths.find((result) => label(result).includes("/rpc")) ?? (decisionPaths[0] as BenchResult);
  const byName = (name: string) => results.find((result) => result.name === name);
  return [
    cpuBound(primary),
    transport(byName(ECHO_NAME)),
    latencyFollows(primary),
    durability(byName(COMMITS_NAME)),
    PROFILE + mcpShare(decisionPaths),
    levers(primary),
  ]
    .filter((paragraph) => paragraph !== "")
    .map((paragraph) => wrap(paragraph));
}

function cpuBound(result: BenchResult): string {
  const title = "**Why they are not met: one thread does all the work.**";
  const cpu = result.cpu;
  if (cpu === undefined)
    return `${title} The server is one Node.js process and serves every request on its main thread.`;
  const idle = Math.max(0, cpus().length - cpu.serverCores - cpu.clientCores - cpu.otherCores);
  return (
    `${title} The server is one Node.js process and serves every request on its main thread. During the ` +
    `${label(result)} row that thread used ${fixed(cpu.serverMainThreadCores)} cores of CPU (the whole process ` +
    `${fixed(cpu.serverCores)}), ${fixed(cpu.serverMsPerOperation)} ms of process CPU per decision, and it also ` +
    `waits out each group commit's fsync; the load generator used ${fixed(cpu.clientCores)} cores and other ` +
    `processes ${fixed(cpu.otherCores)}, so ${fixed(idle)} of the machine's ${cpus().length} cores stayed idle. ` +
    `${whole(TARGETS.decisionsPerSecond)} decisions/s on one thread leaves ${fixed(BUDGET_MS, 1)} ms per decision ` +
    `for everything.${contended(cpu.otherCores)}`
  );
}

/** A warning when other processes took a noticeable share of the machine during the measurement. */
function contended(otherCores: number): string {
  if (!(otherCores > CONTENDED_CORES)) return "";
  return (
    ` **Other processes used ${fixed(otherCores)} cores during this measurement, so every number in this run is ` +
    "lower (and every latency higher) than on an otherwise idle machine.**"
  );
}

function transport(echo: BenchResult | undefined): string {
  if (echo?.cpu === undefined) return "";
  const clientMs = (echo.cpu.clientCores * 1000) / echo.unitsPerSecond;
  const share = (echo.cpu.serverMsPerOperation / BUDGET_MS) * 100;
  return (
    "HTTP alone is cheap by comparison: the bare Fastify echo, with the same client and bodies, answered " +
    `${whole(echo.unitsPerSecond)} requests/s at ${fixed(echo.cpu.serverMsPerOperation, 3)} ms of server CPU each ` +
    `(${fixed(share, 0)} % of that budget). Its limit was the load generator (${fixed(echo.cpu.clientCores)} ` +
    `cores, one thread, ${fixed(clientMs, 3)} ms of client CPU per request), so it is a lower bound for Fastify; ` +
    `at ${whole(TARGETS.decisionsPerSecond)} requests/s the load generator alone would take ` +
    `${fixed((clientMs * TARGETS.decisionsPerSecond) / 1000)} of the two cores.`
  );
}

function latencyFollows(result: BenchResult): string {
  const meanMs = (CONNECTIONS / result.unitsPerSecond) * 1000;
  const needed = (CONNECTIONS * 1000) / TARGETS.p99Ms;
  return (
    `The latency target follows from the throughput: in a closed loop of ${CONNECTIONS} connections the mean ` +
    `latency is ${CONNECTIONS} / throughput (Little's law), ${fixed(meanMs, 1)} ms at ${whole(result.unitsPerSecond)} ` +
    `decisions/s; a p99 of ${TARGETS.p99Ms} ms needs well over ${whole(needed)} decisions/s.`
  );
}

function durability(commits: BenchResult | undefined): string {
  const measured =
    commits === undefined
      ? ""
      : ` sequential single-row commits with \`synchronous=FULL\` reach ${whole(commits.unitsPerSecond)}/s on this ` +
        `disk (p50 ${fixed(commits.p50Ms, 3)} ms), and`;
  return (
    `Durability is the largest single cost but not the cap:${measured} the store's group commit ` +
    "(`src/store/sqlite/group-commit.ts`) puts the commits of all requests handled in one event-loop turn into one " +
    "transaction with one WAL fsync, so far fewer fsyncs than decisions are needed. better-sqlite3 is synchronous, " +
    "though, so each group's commit and fsync block the event loop, and the server handles no request meanwhile."
  );
}

/** From profiles taken once, not re-measured by each run (the date and rate say which code and load they describe). */
const PROFILE =
  "Where a decision's time goes: a profile of the server's main thread under this load over `/rpc` " +
  "(`node --cpu-prof` on the server process, 2026-11-22, otherwise idle machine, ≈ 1,400 decisions/s under the " +
  "profiler, so ≈ 0.6 ms of main thread per decision; taken by hand, not by `npm run bench`, whose profile of this " +
  "run is summarised in the last section; V8 samples wall time, so " +
  "time blocked in fsync counts) found the event loop idle 4 % of the time and split the rest as: group-commit " +
  "transactions 40 % (the native BEGIN and COMMIT with its WAL fsync ≈ 20 %, row inserts ≈ 11 % of which action " +
  "receipts 3 %, encoding, chaining and head checks the rest), HTTP parsing and Fastify 14 %, reads of the run's " +
  "records for the decision (the trigger-id lookup; the last action receipt, read and verified) 7.5 %, audit-log " +
  "lines 7 % (building and serializing them ≈ 5.5 %; their writes, batched per event-loop pass, ≈ 1.5 %), " +
  "decision, evidence and action-receipt logic 7 %, loading the run 6 % (its head row with the head checksum; the " +
  "newest record is read and compared byte for byte with the one this process wrote or last verified instead of " +
  "being decoded and hashed again), routing and authentication 5 %, garbage collection 4.5 %, the scenario lookup " +
  "3 % (one indexed query for the visible row's spec hash; the verified record itself is served from memory), " +
  "startup and the rest 7 %. Canonical JSON took 5 % and SHA-256 under 2 % across these. The previous profile " +
  "(same date, the code before these changes, ≈ 960 decisions/s) had group commits at 30 %, HTTP 12 %, the audit " +
  "log written line by line 10 %, reading and re-verifying the scenario record on every call 9 %, canonical JSON " +
  "and SHA-256 9 % and loading the run with a full check of its tail 7 %.";

function mcpShare(decisionPaths: BenchResult[]): string {
  const rpc = decisionPaths.find((result) => label(result).includes("/rpc"));
  const mcp = decisionPaths.find((result) => label(result).includes("/mcp"));
  if (rpc === undefined || mcp === undefined) return "";
  return (
    " Over `/mcp` the MCP SDK's per-request `Server` and transport (the stateless pattern) took about 30 % of the " +
    "main thread on top of the same work (profile of the same date and code, ≈ 820 decisions/s; 32–40 % with the " +
    `earlier code), so \`/mcp\` reached ${fixed(mcp.unitsPerSecond / rpc.unitsPerSecond)}× the rate of \`/rpc\`.`
  );
}

function levers(result: BenchResult): string {
  const cut = (result.cpu?.serverMsPerOperation ?? Number.NaN) / BUDGET_MS;
  return (
    "Already done: verified scenario records are cached (D2 makes them immutable), the audit log is written in " +
    "batches before each answer, the newest run record is compared instead of re-verified, the scenario lookup " +
    "needs no sorter, canonical JSON sorts each key shape once and SHA-256 is one-shot; together they cut server " +
    "CPU per decision by 18–26 % in interleaved A/B runs against the earlier code on this machine (medians of quiet " +
    "rounds, e.g. 0.97 → 0.71 ms and 0.68 → 0.56 ms). What is " +
    "left is spread out: the largest single lever is committing off the main thread, so that the ≈ 20 % spent " +
    "waiting out COMMIT's fsync overlaps request handling; then HTTP and Fastify (≈ 14 %), the five indexed SQLite " +
    "reads per decision outside the commit (≈ 16 % with their checks) and the row inserts (≈ 11 %). " +
    `${whole(TARGETS.decisionsPerSecond)} decisions/s needs a cut of about ${fixed(cut, 0)}× in server CPU per ` +
    "decision, or several server processes on one database file (supported, see the two-server durability test), " +
    "which would move the limit toward SQLite's single writer (not measured here)."
  );
}

/** "Connection sweep": each dialect at every connection count, with the server's memory at the end of each. */
export function sweepSection(results: BenchResult[]): string {
  const points = results.filter((result) => result.section === "sweep" || result.decisionPath === true);
  if (points.length === 0) return "";
  const megabytes = (bytes: number | undefined) => (bytes === undefined ? "–" : fixed(bytes / 1_048_576, 0));
  const rows = points.map((result) => {
    const [path, connections] = [label(result).split(" ")[1], /(\d+) connections/.exec(result.name)?.[1]];
    const memory = result.serverMemory;
    return (
      `| ${path} | ${connections} | ${whole(result.unitsPerSecond)} | ${fixed(result.p50Ms, 1)} | ` +
      `${fixed(result.p99Ms, 1)} | ${megabytes(memory?.rssBytes)} | ${megabytes(memory?.peakRssBytes)} |`
    );
  });
  return [
    "## Connection sweep",
    wrap(
      "`scenario_next` on the same server as the table above, each connection driving its own run; the " +
        `${CONNECTIONS}-connection rows are the ones above. Server RSS is read from \`/proc\` at the end of each ` +
        "measurement; the peak (VmHWM) is the largest since the server started (the rows ran in this order: `/rpc`, " +
        "then `/mcp`, each from 1 to 128 connections).",
    ),
    "",
    "| path | connections | decisions/s | p50 ms | p99 ms | server RSS MB | server peak RSS MB |",
    "|---|---|---|---|---|---|---|",
    ...rows,
  ].join("\n");
}

/** "Long work beside the decision path": `scenario_next`'s p99 with and without runpack export and verify. */
export function mixedSection(results: BenchResult[]): string {
  const [alone, beside] = results.filter((result) => result.section === "mixed");
  if (alone === undefined || beside === undefined) return "";
  const ratio = beside.p99Ms / alone.p99Ms;
  const verdict = ratio <= MIXED_P99_TARGET ? "met" : "**not met**";
  const row = (result: BenchResult) =>
    `| ${result.name.replace(/^mixed: /, "")} | ${whole(result.unitsPerSecond)} | ${fixed(result.p50Ms, 1)} | ${fixed(result.p99Ms, 1)} |`;
  return [
    "## Long work beside the decision path",
    wrap(
      `\`scenario_next\` over \`/rpc\` at ${CONNECTIONS} connections on the same server, first alone, then while ` +
        "`runpack_export` (no `output_dir`, no embedded verifier report) and `runpack_verify` of one run of 10,000 " +
        "recorded holds (written into the server's SQLite file before it started) repeat one after the other on one " +
        "more connection. " +
        `Target: p99 beside the long work within ${MIXED_P99_TARGET}× of p99 alone.`,
    ),
    "",
    "| load | decisions/s | p50 ms | p99 ms |",
    "|---|---|---|---|",
    row(alone),
    row(beside),
    "",
    `p99 beside the long work: ${fixed(ratio)}× p99 alone (target ≤ ${MIXED_P99_TARGET}×: ${verdict}).`,
  ].join("\n");
}
