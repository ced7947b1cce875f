import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const CLI = fileURLToPath(new URL("../../src/cli/bin.ts", import.meta.url));
const TSX = fileURLToPath(new URL("../../node_modules/tsx/dist/esm/index.mjs", import.meta.url));

/** The command that runs the CLI from source, for child processes (stdio clients included). */
export const CLI_COMMAND = { command: process.execPath, args: ["--import", TSX, CLI] };

export interface ServerProcess {
  url: string;
  dir: string;
  child: ChildProcess;
  stderr(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * A temporary directory holding `decision-gate.toml` with `config`. Relative paths in it resolve against the
 * directory (`[paths] relative_to = "config_file"` is prepended unless `config` has a `[paths]` table), whatever working directory a client starts the
 * server in.
 */
export function configDir(config: string): string {
  const dir = mkdtempSync(join(tmpdir(), "dg-server-"));
  const positionIndependent = /^\[paths\]/m.test(config) ? config : `[paths]\nrelative_to = "config_file"\n\n${config}`;
  writeFileSync(join(dir, "decision-gate.toml"), positionIndependent);
  return dir;
}

/** Starts `decision-gate serve --config <dir>/decision-gate.toml` and waits until it serves HTTP. */
export async function startServerProcess(
  config: string,
  extraArgs: string[] = [],
  setup: (dir: string) => void = () => {},
): Promise<ServerProcess> {
  const dir = configDir(config);
  setup(dir);
  const server = await serveDirectory(dir, extraArgs);
  return {
    ...server,
    stop: async (signal) => {
      const code = await server.stop(signal);
      rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
}

/**
 * Serves the configuration already in `dir` (several servers may share one directory); `stop` keeps the files.
 * `env` adds to this process's environment.
 */
export async function serveDirectory(
  dir: string,
  extraArgs: string[] = [],
  env: NodeJS.ProcessEnv = {},
): Promise<ServerProcess> {
  const child = spawn(
    CLI_COMMAND.command,
    [...CLI_COMMAND.args, "serve", "--config", join(dir, "decision-gate.toml"), ...extraArgs],
    { cwd: dir, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } },
  );
  let stderr = "";
  child.stderr?.on("data", (chunk) => {
    stderr += chunk.toString();
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${stderr}`)), 20_000);
    child.stderr?.on("data", () => {
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
  return {
    url,
    dir,
    child,
    stderr: () => stderr,
    stop: async (signal = "SIGTERM") => {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      child.kill(signal);
      return exited;
    },
  };
}

/** Runs the CLI to completion and returns its exit code and output. */
export async function runCli(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(CLI_COMMAND.command, [...CLI_COMMAND.args, ...args], {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => {
    stdout += chunk.toString();
  });
  child.stderr.on("data", (chunk) => {
    stderr += chunk.toString();
  });
  child.stdin.end(options.input ?? "");
  // "close", not "exit": only then has everything the child wrote to its pipes been read.
  const code = await new Promise<number | null>((resolve) => child.once("close", (exitCode) => resolve(exitCode)));
  return { code, stdout, stderr };
}
