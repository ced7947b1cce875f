import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { join } from "node:path";
import { parseJson } from "../../src/json/parse.js";
import type { JsonValue } from "../../src/json/value.js";
import { CLI_COMMAND } from "./server-process.js";

export type StdioFraming = "ndjson" | "content-length";

/** A `decision-gate serve` child on stdio, talked to message by message. */
export interface StdioSession {
  child: ChildProcessWithoutNullStreams;
  write(data: string | Uint8Array): void;
  /** The next message the server writes (parsed losslessly); fails after `timeoutMs` without one. */
  next(timeoutMs?: number): Promise<JsonValue>;
  /** Messages already received and not yet taken with `next`. */
  pending(): number;
  stderr(): string;
  alive(): boolean;
  /** Closes stdin and resolves with the exit code. */
  end(): Promise<number | null>;
}

/** Starts `decision-gate serve --config <dir>/decision-gate.toml` (a stdio config) with piped stdio. */
export function startStdioSession(dir: string, framing: StdioFraming): StdioSession {
  const child = spawn(
    CLI_COMMAND.command,
    [...CLI_COMMAND.args, "serve", "--config", join(dir, "decision-gate.toml")],
    {
      cwd: dir,
      stdio: ["pipe", "pipe", "pipe"],
    },
  );
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  // Writing to a server that died fails with EPIPE; `next` reports the exit with its standard error instead.
  child.stdin.on("error", () => {});
  let stderr = "";
  child.stderr.on("data", (chunk) => {
    stderr += chunk.toString();
  });
  let buffer: Buffer = Buffer.alloc(0);
  const messages: JsonValue[] = [];
  let wake: (() => void) | null = null;
  child.stdout.on("data", (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    for (let split = splitMessage(buffer, framing); split !== null; split = splitMessage(buffer, framing)) {
      messages.push(parseJson(split.body.toString("utf8")));
      buffer = split.rest;
    }
    wake?.();
  });
  child.stdout.on("end", () => wake?.());
  const alive = () => child.exitCode === null && child.signalCode === null;
  return {
    child,
    write: (data) => {
      child.stdin.write(data);
    },
    next: async (timeoutMs = 10_000) => {
      const deadline = Date.now() + timeoutMs;
      while (messages.length === 0) {
        if (!alive()) throw new Error(`server exited (${child.exitCode}) without answering:\n${stderr}`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no answer within ${timeoutMs} ms:\n${stderr}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(left, 200));
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = null;
      }
      return messages.shift() as JsonValue;
    },
    pending: () => messages.length,
    stderr: () => stderr,
    alive,
    end: () => {
      child.stdin.end();
      return exited;
    },
  };
}

function splitMessage(buffer: Buffer, framing: StdioFraming): { body: Buffer; rest: Buffer } | null {
  if (framing === "ndjson") {
    const newline = buffer.indexOf(0x0a);
    return newline === -1 ? null : { body: buffer.subarray(0, newline), rest: buffer.subarray(newline + 1) };
  }
  const header = /^Content-Length: (\d+)\r\n\r\n/.exec(buffer.toString("latin1", 0, Math.min(buffer.length, 64)));
  if (header === null) return null;
  const start = header[0].length;
  const end = start + Number(header[1]);
  return buffer.length < end ? null : { body: buffer.subarray(start, end), rest: buffer.subarray(end) };
}
