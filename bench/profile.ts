import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { CLI, configDir } from "../test/support/server-process.js";
import { benchDialect, CONFIG, defineScenario, RPC } from "./http.js";
import { wrap } from "./http-report.js";
import { CONNECTIONS, startChildServer } from "./load.js";
import { benchSeconds } from "./measure.js";

/*
 * Where the server's main thread spends its time under the `/rpc` load: the server runs with `node --cpu-prof`,
 * and each sample taken during the measurement is put in the category of the nearest frame on its stack that
 * says where it is (a file of this project or a package; native frames, such as SQLite's, count for their caller).
 */

/** V8's CPU profile (`.cpuprofile`): a call tree, and which node was on top of the stack at each sample. */
interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string }; children?: number[] }>;
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/**
 * Categories by the URL of a frame, first match wins. A frame matching none, or a category of `undefined` (the
 * SQLite driver's JavaScript wrapper), says nothing: its caller decides.
 */
const BY_URL: Array<[category: string | undefined, url: RegExp]> = [
  [undefined, /node_modules\/better-sqlite3\//],
  ["MCP SDK", /node_modules\/@modelcontextprotocol\//],
  ["validation (zod, ajv)", /node_modules\/(zod|ajv)\//],
  ["operational log (pino)", /node_modules\/(pino|@pinojs)/],
  [
    "HTTP and Fastify",
    /node_modules\/(fastify|@fastify|find-my-way|avvio|fast-|secure-json-parse|toad-cache)|^node:(_http_|http$|net$|internal\/(http|stream_base_commons))/,
  ],
  ["other packages", /node_modules\//],
  ["audit log", /\/src\/server\/audit/],
  ["routing, auth and tools", /\/src\/server\//],
  ["control plane", /\/src\/core\/run\//],
  ["evidence and actions", /\/src\/(evidence|actions)\//],
  ["store", /\/src\/store\//],
  ["JSON and hashing", /\/src\/json\/|^node:(crypto|internal\/crypto)/],
  ["other project code", /\/src\//],
];
/** V8's own nodes. */
const BY_NAME = new Map([
  ["(garbage collector)", "garbage collection"],
  ["(idle)", "idle (waiting for I/O)"],
  ["(program)", "V8 and native, unattributed"],
]);
/** Store time inside a commit (`commit`/`append` on the stack) is told apart from reads. */
const COMMIT_FRAME = /^(commit|append)$/;

function categorize(profile: CpuProfile): (nodeId: number) => string {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const cache = new Map<number, string>();
  const categoryOf = (id: number): string => {
    const cached = cache.get(id);
    if (cached !== undefined) return cached;
    const frame = byId.get(id)?.callFrame;
    const up = parent.get(id);
    let category = BY_NAME.get(frame?.functionName ?? "") ?? BY_URL.find(([, url]) => url.test(frame?.url ?? ""))?.[0];
    category ??= up === undefined ? "other" : categoryOf(up);
    cache.set(id, category);
    return category;
  };
  const insideCommit = (id: number | undefined): boolean =>
    id !== undefined && (COMMIT_FRAME.test(byId.get(id)?.callFrame.functionName ?? "") || insideCommit(parent.get(id)));
  return (id) => {
    const category = categoryOf(id);
    if (category !== "store") return category;
    return insideCommit(id) ? "store: commits" : "store: reads and checks";
  };
}

/** Milliseconds of samples per category within [fromUs, toUs] (V8 timestamps: the monotonic clock, in µs). */
function timeByCategory(profile: CpuProfile, fromUs: number, toUs: number): Map<string, number> {
  const categoryOf = categorize(profile);
  const totals = new Map<string, number>();
  let at = profile.startTime;
  for (let index = 0; index < profile.samples.length; index++) {
    at += profile.timeDeltas[index] ?? 0;
    const duration = profile.timeDeltas[index + 1] ?? 0;
    if (at < fromUs || at >= toUs) continue;
    const category = categoryOf(profile.samples[index] as number);
    totals.set(category, (totals.get(category) ?? 0) + duration / 1000);
  }
  return totals;
}

/** The main thread's profile in `dir`: `CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile` with thread 0. */
function mainThreadProfile(dir: string): CpuProfile {
  const file = readdirSync(dir).find((name) => name.endsWith(".cpuprofile") && name.split(".")[4] === "0");
  if (file === undefined) throw new Error(`no main-thread CPU profile in ${dir}`);
  return JSON.parse(readFileSync(join(dir, file), "utf8")) as CpuProfile;
}

/** The "profile" section of docs/PERFORMANCE.md: `scenario_next` over `/rpc` at 32 connections, profiled. */
export async function profileDecisionPath(): Promise<string> {
  const dir = configDir(CONFIG);
  const profiles = mkdtempSync(join(dir, "profiles-"));
  try {
    const server = await startChildServer(CLI, {
      nodeArgs: ["--cpu-prof", "--cpu-prof-dir", profiles],
      args: ["serve", "--config", join(dir, "decision-gate.toml")],
      cwd: dir,
    });
    let result: Awaited<ReturnType<typeof benchDialect>>;
    let toUs: number;
    try {
      await defineScenario(server);
      result = await benchDialect(server, RPC, CONNECTIONS, "profile");
      toUs = Number(process.hrtime.bigint() / 1000n);
    } finally {
      await server.stop(); // the profile is written as the server exits
    }
    const totals = timeByCategory(mainThreadProfile(profiles), toUs - benchSeconds() * 1e6, toUs);
    console.log(`profile: ${[...totals].map(([category, ms]) => `${category} ${ms.toFixed(0)} ms`).join(", ")}`);
    return profileSection(totals, result.operations, result.unitsPerSecond);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function profileSection(totals: Map<string, number>, decisions: number, decisionsPerSecond: number): string {
  const sampled = [...totals.values()].reduce((sum, ms) => sum + ms, 0);
  const rows = [...totals]
    .sort((a, b) => b[1] - a[1])
    .map(
      ([category, ms]) => `| ${category} | ${((100 * ms) / sampled).toFixed(1)} % | ${(ms / decisions).toFixed(3)} |`,
    );
  const intro = wrap(
    `\`node --cpu-prof\` on a separate server process under the same \`/rpc\` load (${CONNECTIONS} connections, ` +
      `${decisionsPerSecond.toFixed(0)} decisions/s under the profiler), the last ${benchSeconds()} s of samples. ` +
      "Each sample counts for the nearest frame on its stack that names a file of this project or a package (native " +
      "frames, such as SQLite's statements, count for their caller); store time inside `commit`/`append` is " +
      'counted as commits. V8 samples wall time of the main thread: "idle" is time it waited for I/O (or for a ' +
      "writer thread).",
  );
  return `## Where the main thread's time goes

${intro}

| category | share of the main thread | ms per decision |
|---|---|---|
${rows.join("\n")}
`;
}
