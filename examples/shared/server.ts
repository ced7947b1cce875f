/**
 * Shared helper for the examples: starts the real Decision Gate server (`src/cli/bin.ts serve`) as a child
 * process on a free loopback port, with its configuration in a temporary directory that is removed on stop,
 * and calls its tools over the Decision Gate JSON-RPC endpoint (`/rpc`) with lossless JSON (64-bit integers).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseJson } from "../../src/json/parse.js";
import type { JsonObject, JsonValue } from "../../src/json/value.js";
import { compactJson } from "../../src/json/write.js";

const CLI = fileURLToPath(new URL("../../src/cli/bin.ts", import.meta.url));
const TSX = fileURLToPath(new URL("../../node_modules/tsx/dist/esm/index.mjs", import.meta.url));

/** The command line that runs the Decision Gate CLI from source (usable for stdio MCP clients too). */
export const CLI_COMMAND = { command: process.execPath, args: ["--import", TSX, CLI] };

/** The command line that runs a TypeScript file with tsx (e.g. an external evidence provider). */
export const tsxCommand = (file: string): string[] => [process.execPath, "--import", TSX, file];

/** A temporary directory holding `decision-gate.toml`; `setup` may add files (keys, evidence) before serving. */
export function tempConfigDir(config: (dir: string) => string): string {
  const dir = mkdtempSync(join(tmpdir(), "dg-example-"));
  writeFileSync(join(dir, "decision-gate.toml"), config(dir));
  return dir;
}

export interface RunningServer {
  url: string;
  dir: string;
  call(tool: string, args: JsonValue): Promise<JsonObject>;
  stop(): Promise<void>;
}

/** A tool failure reported by the server (JSON-RPC error), with its code and data. */
export class ToolError extends Error {
  constructor(
    message: string,
    readonly error: JsonObject,
  ) {
    super(message);
  }
}

/** Serves `<dir>/decision-gate.toml` over HTTP and waits for `serving on <url>`; `stop` removes `dir`. */
export async function startServer(dir: string): Promise<RunningServer> {
  const child: ChildProcess = spawn(
    CLI_COMMAND.command,
    [...CLI_COMMAND.args, "serve", "--config", join(dir, "decision-gate.toml")],
    { cwd: dir, stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${stderr}`)), 20_000);
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      const match = /serving on (\S+)/.exec(stderr);
      if (match?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${stderr}`));
    });
  });
  // Keep draining stderr (the audit log) so the child never blocks on a full pipe; DG_EXAMPLE_DEBUG=1 shows it.
  child.stderr?.on("data", (chunk: Buffer) => {
    if (process.env.DG_EXAMPLE_DEBUG === "1") process.stderr.write(chunk);
  });

  return {
    url,
    dir,
    async call(tool, args) {
      const response = await fetch(`${url}/rpc`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: compactJson({ jsonrpc: "2.0", id: 1n, method: "tools/call", params: { name: tool, arguments: args } }),
      });
      const body = parseJson(await response.text()) as JsonObject;
      if (body.error !== undefined) {
        const error = body.error as JsonObject;
        throw new ToolError(`${tool} failed: ${String(error.message)}`, error);
      }
      return ((body.result as JsonObject).content as Array<{ json: JsonObject }>)[0]?.json as JsonObject;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
        child.kill("SIGTERM");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
