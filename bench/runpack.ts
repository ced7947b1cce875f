import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setImmediate } from "node:timers/promises";
import { DEFAULT_CAPABILITIES } from "../src/actions/capabilities.js";
import { DEFAULT_MAPPING, RECEIPTS_ARTIFACT_PATH, receiptIssuer } from "../src/actions/receipts.js";
import type { RunKey, RunStateStore } from "../src/core/run/store.js";
import { buildRunpack } from "../src/core/runpack/builder.js";
import { DEFAULT_MANIFEST_NAME, MAX_RUNPACK_ARTIFACT_BYTES } from "../src/core/runpack/manifest.js";
import { FilesystemRunpack, verifyRunpackDirectory } from "../src/runpack/filesystem.js";
import { renderReportHtml } from "../src/runpack/report/html.js";
import { loadRunpackForReport } from "../src/runpack/report/load.js";
import { buildReportModel } from "../src/runpack/report/model.js";
import { type BenchResult, benchSeconds, summarize } from "./measure.js";
import { openPlane, RunDriver, SPEC } from "./plane.js";

/** Decisions in the exported run. */
const DECISIONS = 10_000;
/** Each operation is timed at least this often (after one warm-up), and then until `BENCH_SECONDS` have passed. */
const MIN_REPETITIONS = 3;
/** The server's default security context (`dev.permissive` off, Decision Gate's own namespace registry). */
const SECURITY = { dev_permissive: false, namespace_authority: "dg_registry" } as const;

/** One timed call: its latency and how far the process's peak RSS rose above the RSS it started with. */
interface Sample {
  ms: number;
  rssGrowthBytes: number | undefined;
}

/**
 * Linux keeps the process's peak RSS in /proc/self/status (VmHWM), and writing 5 to /proc/self/clear_refs resets
 * it to the current RSS, so the peak of one synchronous-heavy call can be read without sampling. Elsewhere,
 * no memory figure is reported.
 */
function resetPeakRss(): boolean {
  try {
    writeFileSync("/proc/self/clear_refs", "5");
    return true;
  } catch {
    return false;
  }
}

function peakRssBytes(): number | undefined {
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"));
  return match === null ? undefined : Number(match[1]) * 1024;
}

async function sample(work: () => Promise<void>): Promise<Sample> {
  const resettable = resetPeakRss();
  const rssBefore = process.memoryUsage().rss;
  const before = performance.now();
  await work();
  const ms = performance.now() - before;
  const peak = resettable ? peakRssBytes() : undefined;
  return { ms, rssGrowthBytes: peak === undefined ? undefined : Math.max(0, peak - rssBefore) };
}

/**
 * Times `work` after one warm-up, at least `MIN_REPETITIONS` times and until `BENCH_SECONDS` of timed work.
 * `prepare` runs untimed before each call (e.g. a fresh output directory); `describe` adds details to the name.
 * Units per operation are decisions.
 */
async function repeat(
  name: string,
  decisions: number,
  prepare: () => void,
  work: () => Promise<void>,
  describe: () => Promise<string[]> = async () => [],
): Promise<BenchResult> {
  prepare();
  await work();
  const samples: Sample[] = [];
  let timedMs = 0;
  while (samples.length < MIN_REPETITIONS || timedMs < benchSeconds() * 1000) {
    prepare();
    const next = await sample(work);
    samples.push(next);
    timedMs += next.ms;
  }
  const growths = samples.map((s) => s.rssGrowthBytes).filter((growth) => growth !== undefined);
  const result = summarize(
    name,
    decisions,
    samples.map((s) => s.ms),
    timedMs / 1000,
  );
  const details = await describe();
  if (growths.length > 0) details.push(`peak RSS +${megabytes(Math.max(...growths))} MB`);
  if (details.length > 0) result.name += ` — ${details.join(", ")}`;
  return result;
}

function megabytes(bytes: number): string {
  return (bytes / 1_048_576).toFixed(1);
}

/** Every file of the runpack at `dir` with its size in bytes. */
async function fileSizes(dir: string): Promise<Array<[string, number]>> {
  const files = await new FilesystemRunpack(dir).list();
  return files.sort().map((file) => [file, statSync(join(dir, file)).size]);
}

/**
 * `runpack_export` as the server does it, with `[runtime_actions] include_in_runpack`: load, then build, pausing for
 * the event loop between chunks of records.
 */
async function exportRunpack(store: RunStateStore, key: RunKey, dir: string): Promise<string> {
  const state = await store.load(key);
  if (state === undefined) throw new Error("the bench run is missing");
  const receipts = await store.loadReceipts(key);
  const { manifest } = await buildRunpack(SPEC, state, new FilesystemRunpack(dir), {
    generatedAt: { kind: "logical", value: 0n },
    manifestName: DEFAULT_MANIFEST_NAME,
    security: SECURITY,
    extraArtifacts: [{ path: RECEIPTS_ARTIFACT_PATH, value: receipts }],
    pause: () => setImmediate(),
  });
  return manifest.integrity.root_hash.value;
}

/**
 * Runpack export and verify for one run of `decisions` recorded holds: the run is built for real through the
 * control plane on a SQLite file (WAL, synchronous=FULL) with action receipts on (untimed setup); export loads it
 * from the store and writes it with `buildRunpack` to a fresh directory (receipts included, no embedded verifier
 * report), verify runs `verifyRunpackDirectory` (as `runpack_verify`, with the receipt-chain check) on it, and
 * report renders it as `decision-gate runpack report` does (verification, reading the logs, the HTML page).
 */
export async function benchRunpack(decisions = DECISIONS): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), "dg-bench-runpack-"));
  const { db, store, plane } = openPlane(join(dir, "run.db"), "full", {
    receipts: receiptIssuer({ mapping: DEFAULT_MAPPING, capabilities: DEFAULT_CAPABILITIES }),
  });
  try {
    const setupStart = performance.now();
    const driver = new RunDriver(plane, "runpack");
    await driver.start();
    for (let i = 0; i < decisions; i++) await driver.next();
    const state = await store.load(driver.key);
    if (state?.decisions.length !== decisions) throw new Error(`expected ${decisions} recorded decisions`);
    const count = decisions.toLocaleString("en");
    console.log(
      `runpack: built a run of ${count} decisions in ${((performance.now() - setupStart) / 1000).toFixed(1)} s (setup, not measured)`,
    );

    let output = "";
    let rootHash: string | undefined;
    const exported = await repeat(
      `runpack export: ${count} decisions from SQLite, with action receipts`,
      decisions,
      () => {
        if (output !== "") rmSync(output, { recursive: true, force: true });
        output = mkdtempSync(join(dir, "export-"));
      },
      async () => {
        const hash = await exportRunpack(store, driver.key, output);
        if (rootHash !== undefined && hash !== rootHash) throw new Error("runpack export is not deterministic");
        rootHash = hash;
      },
      async () => {
        const sizes = await fileSizes(output);
        const total = sizes.reduce((sum, [, size]) => sum + size, 0);
        const [largest, largestSize] = sizes.reduce((a, b) => (b[1] > a[1] ? b : a));
        console.log(
          `runpack: ${sizes.map(([file, size]) => `${file} ${megabytes(size)} MB`).join(", ")}; largest ${largest} ` +
            `is ${((100 * largestSize) / MAX_RUNPACK_ARTIFACT_BYTES).toFixed(0)} % of the verifier's per-artifact limit`,
        );
        return [`runpack ${megabytes(total)} MB`];
      },
    );

    const verified = await repeat(
      `runpack verify: ${count} decisions, with receipt chain`,
      decisions,
      () => {},
      async () => {
        const report = await verifyRunpackDirectory(output);
        if (report.status !== "pass") {
          throw new Error(`runpack verify failed for ${count} decisions: ${report.errors.join("; ")}`);
        }
      },
    );
    let page = "";
    const reported = await repeat(
      `runpack report (HTML): ${count} decisions, verification included`,
      decisions,
      () => {},
      async () => {
        const loaded = await loadRunpackForReport(output, DEFAULT_MANIFEST_NAME);
        if (loaded.verification.status !== "pass") throw new Error(`runpack report: verification failed for ${count}`);
        page = renderReportHtml(buildReportModel(loaded), { generator: "bench" });
      },
      async () => [`page ${megabytes(Buffer.byteLength(page))} MB`],
    );
    return [exported, verified, reported];
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
