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
    if (cpu === undefined || !(result.decisionPath === true || result.name === ECHO_NAME)) return [];
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
    CHANGES + mcpShare(decisionPaths),
    levers(primary),
  ]
    .filter((paragraph) => paragraph !== "")
    .map((paragraph) => wrap(paragraph));
}

function cpuBound(result: BenchResult): string {
  const title = "**Why they are not met: server CPU per decision.**";
  const cpu = result.cpu;
  if (cpu === undefined) return `${title} The server's main thread serves every request.`;
  const idle = Math.max(0, cpus().length - cpu.serverCores - cpu.clientCores - cpu.otherCores);
  return (
    `${title} The server's main thread parses, authorizes, decides and answers every request; SQLite commits run ` +
    `on the store's writer thread beside it. During the ${label(result)} row the main thread used ` +
    `${fixed(cpu.serverMainThreadCores)} cores (the whole process ${fixed(cpu.serverCores)}), ` +
    `${fixed(cpu.serverMsPerOperation)} ms of process CPU per decision; the load generator used ` +
    `${fixed(cpu.clientCores)} cores and other processes ${fixed(cpu.otherCores)}, so ${fixed(idle)} of the ` +
    `machine's ${cpus().length} cores stayed idle. ${whole(TARGETS.decisionsPerSecond)} decisions/s on one thread ` +
    `leaves ${fixed(BUDGET_MS, 1)} ms per decision for everything.${contended(cpu.otherCores)}`
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
    `Durability is not the cap:${measured} the store's writer thread (\`src/store/sqlite/writer.ts\`) owns the ` +
    "write connection and commits every write that arrived in one event-loop turn as one transaction with one WAL " +
    "fsync, while the next group gathers; a decision is answered only once its group is on disk. The main thread " +
    "no longer waits out COMMIT: it only posts the rows (≈ 5 % of its time, the structured clone of each write)."
  );
}

/**
 * What the changes of 2026-12-07 bought, measured then (A/B against the previous code, interleaved, on a machine
 * that other work kept busy, so CPU per request rather than throughput): the numbers are facts of that date.
 */
const CHANGES =
  "Changes of 2026-12-07, each measured A/B against the code before it (interleaved runs; the machine was busy, " +
  "so server CPU per request is the reliable figure): SQLite commits moved to the writer thread (the ≈ 14 % of the " +
  "main thread spent in row inserts, BEGIN/COMMIT and its fsync left it; posting the rows costs ≈ 5 %); `/mcp` " +
  "serves stateless requests through one long-lived MCP SDK server instead of a server and transport per request " +
  "(server CPU per request ≈ 7.3 → 3.8 ms under that load; the cost of `/mcp` over `/rpc` fell from ≈ 2.1–2.9× to " +
  "≈ 1.1–1.4×); audit lines are written straight to text (≈ 14 → 5 µs of CPU for a decision's three lines); and " +
  "object spreads that add members were removed from the hot path (on Node 20 `{ ...a, b, c }` costs about 1–6 µs " +
  "per object against ≈ 0.1 µs spelled out; the audit events and each appended record built one). The rows above " +
  "ran on a slower machine state than the 2026-11-22 run (the Fastify echo then answered 13,597 requests/s), so " +
  "compare ratios to the baselines, not absolute rates: `/rpc` was 0.11× the echo on 2026-11-22.";

function mcpShare(decisionPaths: BenchResult[]): string {
  const rpc = decisionPaths.find((result) => label(result).includes("/rpc"));
  const mcp = decisionPaths.find((result) => label(result).includes("/mcp"));
  if (rpc === undefined || mcp === undefined) return "";
  return ` In this run \`/mcp\` reached ${fixed(mcp.unitsPerSecond / rpc.unitsPerSecond)}× the rate of \`/rpc\` (target ≥ 0.8×).`;
}

function levers(result: BenchResult): string {
  const cut = (result.cpu?.serverMsPerOperation ?? Number.NaN) / BUDGET_MS;
  return (
    `The measured limit: ${whole(TARGETS.decisionsPerSecond)} decisions/s needs a cut of about ${fixed(cut, 0)}× in ` +
    "server CPU per decision, and the profile below shows no single cost that large: store reads and their checks, " +
    "canonical JSON and hashing, and HTTP with Fastify are the largest shares. Next levers, in order: serve a run's " +
    "head, newest record and last action receipt from what this process wrote or verified last (the reads and checks " +
    "of each decision, guarded by the head checksum the writer re-checks in its transaction); pre-serialize the fixed " +
    "response shapes; then several server processes on one database file (measured on 2026-12-07 with a Node cluster " +
    "prototype of two workers on a busy machine: no lower CPU per decision, the gain was only a larger share of the " +
    "machine, so it is not built; the idle share of the cores in the CPU table is what it could use)."
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

/** Why the long work still delays decisions, from the profile of 2026-12-07 (P3's and the lead's runs). */
const MIXED_LIMIT =
  "Verify runs in a worker thread and export yields between chunks of about 64 KiB of canonical JSON, and the " +
  "store's check of the whole run yields every 256 records; what still holds the main thread is the one " +
  "synchronous SQLite read of every row of the run at the start of each export (tens of megabytes for 10,000 " +
  "decisions) and the encoding of each chunk. Next lever: read the run in bounded pages, or export from a worker " +
  "thread with its own read connection.";

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
    `p99 beside the long work: ${fixed(ratio)}× p99 alone (target ≤ ${MIXED_P99_TARGET}×: ${verdict}).` +
      (ratio <= MIXED_P99_TARGET ? "" : ` ${MIXED_LIMIT}`),
  ].join("\n");
}
