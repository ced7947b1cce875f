import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { Agent, request } from "node:http";
import { constants } from "node:os";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { type BenchResult, benchSeconds, summarize } from "./measure.js";

/** Concurrent keep-alive connections of the closed-loop load (spec §8). */
export const CONNECTIONS = 32;
export const WARM_UP_MS = 1000;

export interface Answer {
  status: number;
  body: string;
}

/** What each connection sends, and how an answer is checked. */
export interface Load {
  path: string;
  headers: Record<string, string>;
  /** The body of request number `sequence` on connection `lane`. */
  body(lane: number, sequence: number): string;
  /** Throws unless `answer` is the right one for `sentBody`; `sequence` 0 is during the warm-up. */
  check(answer: Answer, sentBody: string, sequence: number): void;
}

/** One POST on `agent`'s connection. */
export function post(agent: Agent, url: URL, headers: Record<string, string>, body: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const withLength = { ...headers, "content-length": String(Buffer.byteLength(body)) };
    const sent = request(url, { method: "POST", agent, headers: withLength }, (response) => {
      let text = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        text += chunk;
      });
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body: text }));
      response.on("error", reject);
    });
    sent.on("error", reject);
    sent.end(body);
  });
}

/**
 * `connections` keep-alive connections, each sending its next request as soon as the previous answer arrived, for
 * 1 s of warm-up and then `benchSeconds()`. Throughput and latencies count the requests sent after the warm-up;
 * `cpu` is what the server process `serverPid`, this process (the load generator) and everything else on the
 * machine used meanwhile, `serverMemory` the server's RSS at the end and its peak so far.
 */
export async function closedLoop(
  name: string,
  baseUrl: string,
  serverPid: number,
  load: Load,
  connections = CONNECTIONS,
): Promise<BenchResult> {
  const url = new URL(load.path, baseUrl);
  const measureFrom = performance.now() + WARM_UP_MS;
  const deadline = measureFrom + benchSeconds() * 1000;
  const latencies: number[] = [];
  const lane = async (index: number) => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let sequence = 0; performance.now() < deadline; sequence++) {
        const body = load.body(index, sequence);
        const sentAt = performance.now();
        const answer = await post(agent, url, load.headers, body);
        const latency = performance.now() - sentAt;
        load.check(answer, body, sequence);
        if (sentAt >= measureFrom) latencies.push(latency);
      }
    } finally {
      agent.destroy();
    }
  };
  const meter = new Promise<CpuMeter>((resolve) => setTimeout(() => resolve(startCpuMeter(serverPid)), WARM_UP_MS));
  await Promise.all(Array.from({ length: connections }, (_, index) => lane(index)));
  const elapsedSeconds = (performance.now() - measureFrom) / 1000;
  const result = summarize(name, 1, latencies, elapsedSeconds);
  const cpu = (await meter)(elapsedSeconds, result.operations);
  return { ...result, cpu, serverMemory: memoryOf(serverPid) };
}

/** VmRSS and VmHWM (peak RSS) of process `pid` from /proc (undefined elsewhere). */
function memoryOf(pid: number): BenchResult["serverMemory"] {
  const status = readProc(`/proc/${pid}/status`);
  const kilobytes = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(status ?? "")?.[1]);
  const rssBytes = kilobytes("VmRSS") * 1024;
  return Number.isNaN(rssBytes) ? undefined : { rssBytes, peakRssBytes: kilobytes("VmHWM") * 1024 };
}

// ---------------------------------------------------------------------------------------------------------------
// CPU accounting (Linux /proc; NaN elsewhere)
// ---------------------------------------------------------------------------------------------------------------

/** Clock ticks per second of /proc's CPU times (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

/** CPU time used so far, in ms: by the server process, by this process and by the whole machine. */
interface CpuSample {
  server: number;
  serverMainThread: number;
  client: number;
  machine: number;
}

/** CPU use from now on: given the seconds and operations measured, what `BenchResult.cpu` reports. */
export type CpuMeter = (seconds: number, operations: number) => BenchResult["cpu"];

/** Starts measuring the CPU of the server process `serverPid` (none: no server), this process and the machine. */
export function startCpuMeter(serverPid?: number): CpuMeter {
  const start = cpuNow(serverPid);
  return (seconds, operations) => cpuUse(start, cpuNow(serverPid), seconds, operations);
}

function cpuNow(serverPid: number | undefined): CpuSample {
  const client = process.cpuUsage();
  return {
    server: serverPid === undefined ? 0 : cpuMs(`/proc/${serverPid}/stat`),
    serverMainThread: serverPid === undefined ? 0 : cpuMs(`/proc/${serverPid}/task/${serverPid}/stat`),
    client: (client.user + client.system) / 1000,
    machine: machineCpuMs(),
  };
}

/** utime + stime from a /proc `stat` file: of a process (all its threads) or of one of its threads. */
function cpuMs(statFile: string): number {
  const fields = readProc(statFile)?.split(") ")[1]?.split(" ");
  return ((Number(fields?.[11]) + Number(fields?.[12])) * 1000) / TICKS_PER_SECOND;
}

/** Busy time of all CPUs (user, nice, system, irq, softirq) from /proc/stat's first line. */
function machineCpuMs(): number {
  const ticks = readProc("/proc/stat")?.split("\n")[0]?.split(/\s+/).slice(1).map(Number) ?? [];
  const [user, nice, system, , , irq, softirq] = ticks;
  return (((user ?? Number.NaN) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0)) * 1000) / TICKS_PER_SECOND;
}

function readProc(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

function cpuUse(start: CpuSample, end: CpuSample, seconds: number, operations: number): BenchResult["cpu"] {
  const cores = (ms: number) => ms / 1000 / seconds;
  const server = end.server - start.server;
  const client = end.client - start.client;
  return {
    serverMsPerOperation: server / operations,
    serverCores: cores(server),
    serverMainThreadCores: cores(end.serverMainThread - start.serverMainThread),
    clientCores: cores(client),
    otherCores: Math.max(0, cores(end.machine - start.machine - server - client)),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------------------------------

const TSX = fileURLToPath(new URL("../node_modules/tsx/dist/esm/index.mjs", import.meta.url));

/** Child processes still running, with their temporary directories; removed when this process exits, however. */
const children = new Map<ChildProcess, string | undefined>();
process.once("exit", () => {
  for (const [child, dir] of children) {
    child.kill("SIGKILL");
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  }
});
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => process.exit(128 + constants.signals[signal]));
}

/** Makes sure `child` (and `dir`, its temporary directory, if it has one) does not outlive this process. */
export function track(child: ChildProcess, dir?: string): void {
  children.set(child, dir);
  child.once("exit", () => children.delete(child));
}

export interface ChildServer {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/**
 * Runs a TypeScript file that prints `serving on <url>` to stderr once it listens, and stops on SIGTERM; with
 * `nodeArgs` for Node itself, `args` for the script and `cwd` as its working directory.
 */
export async function startChildServer(
  script: string,
  options: { nodeArgs?: string[]; args?: string[]; cwd?: string } = {},
): Promise<ChildServer> {
  const argv = [...(options.nodeArgs ?? []), "--import", TSX, script, ...(options.args ?? [])];
  const child = spawn(process.execPath, argv, { cwd: options.cwd, stdio: ["ignore", "ignore", "pipe"] });
  track(child);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
  };
  let stderr = "";
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr?.on("data", (chunk) => {
      stderr += chunk.toString();
      const match = /serving on (\S+)/.exec(stderr);
      if (match?.[1] !== undefined) resolve(match[1]);
    });
    void exited.then(() => reject(new Error(`${script} exited:\n${stderr}`)));
  }).catch(async (error: unknown) => {
    await stop();
    throw error;
  });
  return { url, pid: child.pid ?? 0, stop };
}
