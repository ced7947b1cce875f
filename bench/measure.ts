import { performance } from "node:perf_hooks";

export interface BenchResult {
  name: string;
  /** Operations (one call of the body) per second. */
  operationsPerSecond: number;
  /** Units of work per second (operations × units per operation), e.g. evidence evaluations. */
  unitsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  operations: number;
  /** Set on the HTTP decision-path results that spec §8's targets apply to. */
  decisionPath?: boolean;
  /** Results shown only in their own section of docs/PERFORMANCE.md, not in the main table. */
  section?: "sweep" | "mixed";
  /** CPU use while a client and a server process were measured, in cores (CPU seconds per second). */
  cpu?: {
    serverMsPerOperation: number;
    serverCores: number;
    serverMainThreadCores: number;
    clientCores: number;
    otherCores: number;
  };
  /** The server process's resident memory at the end of a client/server measurement, and its peak until then. */
  serverMemory?: { rssBytes: number; peakRssBytes: number };
}

/** How long each benchmark measures, in seconds (`BENCH_SECONDS`, default 3). */
export function benchSeconds(): number {
  return Number(process.env.BENCH_SECONDS ?? 3);
}

/** Runs `body` sequentially for about `seconds` after a warm-up and reports throughput and latency. */
export async function measure(
  name: string,
  unitsPerOperation: number,
  body: () => Promise<void>,
  seconds = benchSeconds(),
): Promise<BenchResult> {
  for (let i = 0; i < 50; i++) await body();
  const latencies: number[] = [];
  const start = performance.now();
  const deadline = start + seconds * 1000;
  while (performance.now() < deadline) {
    const before = performance.now();
    await body();
    latencies.push(performance.now() - before);
  }
  return summarize(name, unitsPerOperation, latencies, (performance.now() - start) / 1000);
}

/** Throughput and latency percentiles of operations that took `latencies` (ms) within `elapsedSeconds`. */
export function summarize(
  name: string,
  unitsPerOperation: number,
  latencies: number[],
  elapsedSeconds: number,
): BenchResult {
  latencies.sort((a, b) => a - b);
  const percentile = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0;
  const operationsPerSecond = latencies.length / elapsedSeconds;
  return {
    name,
    operationsPerSecond,
    unitsPerSecond: operationsPerSecond * unitsPerOperation,
    p50Ms: percentile(0.5),
    p99Ms: percentile(0.99),
    operations: latencies.length,
  };
}
