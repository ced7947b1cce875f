import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { benchSignedEvidence } from "./evidence.js";
import { benchHttp } from "./http.js";
import { httpTargets, mixedSection, sweepSection } from "./http-report.js";
import type { BenchResult } from "./measure.js";
import { benchPostgres } from "./postgres.js";
import { postgresSection } from "./postgres-report.js";
import { profileDecisionPath } from "./profile.js";
import { benchRunpack } from "./runpack.js";
import { benchStore } from "./store.js";

/** `npm run bench`: runs every benchmark in one process and rewrites docs/PERFORMANCE.md. */
async function main(): Promise<void> {
  const results: BenchResult[] = [];
  for (const bench of [benchSignedEvidence, benchStore, benchRunpack, benchHttp, benchPostgres]) {
    for (const result of [await bench()].flat()) {
      results.push(result);
      console.log(
        `${result.name}: ${result.operationsPerSecond.toFixed(0)} ops/s, ${result.unitsPerSecond.toFixed(0)} units/s, ` +
          `p50 ${result.p50Ms.toFixed(3)} ms, p99 ${result.p99Ms.toFixed(3)} ms (${result.operations} ops)`,
      );
    }
  }
  const profile = await profileDecisionPath();
  writeFileSync(new URL("../docs/PERFORMANCE.md", import.meta.url), report(results, profile));
}

function report(results: BenchResult[], profile: string): string {
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? "unknown CPU"}, Node ${process.version}`;
  const rows = results
    .filter((r) => r.section === undefined)
    .map(
      (r) =>
        `| ${r.name} | ${r.operationsPerSecond.toFixed(0)} | ${r.unitsPerSecond.toFixed(0)} | ${r.p50Ms.toFixed(3)} | ${r.p99Ms.toFixed(3)} |`,
    );
  return `# Performance

Written by \`npm run bench\` (${new Date().toISOString().slice(0, 10)}, ${machine}). Each benchmark runs
sequentially in one process after a warm-up; \`BENCH_SECONDS\` sets the duration of each (default 3).

| benchmark | operations/s | units/s | p50 ms | p99 ms |
|---|---|---|---|---|
${rows.join("\n")}

- **signed evidence**: one \`scenario_next\` on a gate of 10 conditions whose provider signs every answer;
  each operation runs the trust pipeline (signature and evidence-hash checks with strict Ed25519) ten times,
  so units are evidence evaluations. Memory store, no transport.
- **sqlite store**: \`scenario_next\` through the control plane on a SQLite file with one time condition that
  never passes, so every trigger is a recorded hold. "one run" is sequential; "32 runs at once" sends one trigger
  to each of 32 runs per operation (units = decisions), so their commits are grouped into one transaction. The last two rows check D10: the cost of
  a trigger after 10 and after 10,000 prior triggers (target: at most 1.5× apart).
- **runpack**: export and verify of one run of 10,000 recorded holds (the sqlite store's gate), built through the
  control plane on a SQLite file (WAL, FULL) with action receipts on; building it is untimed setup. Export is
  \`runpack_export\` with \`[runtime_actions] include_in_runpack\` and no embedded verifier report: load the run
  state and receipts from the store, then \`buildRunpack\` into a fresh directory (pausing for the event loop between
  chunks of records, as the server does). Verify is \`runpack_verify\`'s work
  (\`verifyRunpackDirectory\`, receipt chain included; the server runs it in a worker thread) on that directory and
  must report \`pass\`. Report is
  \`decision-gate runpack report\` without the file write: verification, reading the logs and rendering the HTML
  page (its size is in the name). Each is timed at
  least 3 times after one warm-up (\`BENCH_SECONDS\` bounds further repetitions), so p99 is the slowest; units are
  decisions. The name gives the runpack's size on disk and the largest rise of peak RSS (Linux VmHWM, reset before
  each call) above the RSS at the call's start.
- **HTTP** (loopback, two baselines and the real server, measured in the same run): 32 keep-alive connections in a
  closed loop (each sends its next request when the previous answer arrives; node:http client in this process),
  1 s warm-up. The Fastify echo (child process) returns the same \`scenario_next\` bodies; the raw SQLite baseline
  commits one 1 KiB row per transaction in this process. The real server (\`decision-gate serve\` from source, child process)
  has a SQLite run store (WAL, FULL), one bearer token and audit to a file; each connection drives its own run of the
  release gate with a time threshold far in the future, so every request is a new recorded hold. \`/mcp\` is
  stateless: each request is a lone \`tools/call\` POST with no \`initialize\` and no session (the server answers
  with \`application/json\`; the SDK rejects requests whose \`Accept\` lacks \`text/event-stream\` with 406).
  The ratios in the names are decisions/s over the echo's requests/s and over the raw commits/s. The same server
  then serves the connection sweep and the long-work benchmark below; the profile uses a server of its own.
- **PostgreSQL** (only when PostgreSQL is installed; \`bench/postgres.ts\`): a throwaway cluster started by the
  benchmark (\`fsync\` and \`synchronous_commit\` on). The baseline commits one 1 KiB row per transaction on 32
  connections; then the HTTP benchmark's server with its run state and registries in that cluster serves
  \`scenario_next\` over \`/rpc\` at 32 connections, with one replica and with two replicas (16 connections each,
  throughput summed, the slower replica's percentiles). Ratios are decisions/s over the raw commits/s (target: at
  least 0.5× with one replica); the PostgreSQL section below splits the CPU of a commit and of a decision. The
  last two PostgreSQL rows check D10 there as the sqlite store rows do (control plane, no transport): a trigger
  after 10 and after 10,000 prior triggers, on 100 short runs and one long run in one database.

${httpTargets(results)}

${sweepSection(results)}

${mixedSection(results)}

${postgresSection(results)}

${profile}`;
}

await main();
