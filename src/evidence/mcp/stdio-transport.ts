import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { constants } from "node:os";
import type { JsonObject } from "../../json/value.js";
import {
  ContentLengthDecoder,
  encodeContentLength,
  encodeLine,
  type FrameDecoder,
  type FrameError,
  LineDecoder,
} from "../../net/framing.js";
import type { McpProtocol } from "./config.js";
import {
  failure,
  INITIALIZED_NOTIFICATION,
  initializeCall,
  isServerMessage,
  MAX_MCP_RESPONSE_BYTES,
  type McpProviderFailure,
  type McpTransport,
  negotiatedVersion,
  parseMessage,
  type RpcCall,
  replyToServerMessage,
  transientFailure,
} from "./protocol.js";

/*
 * A provider running as a child process. The child is spawned on first use and replaced on the next call after it
 * died, timed out (only with a `requestTimeoutMs`: the reference waits for ever) or sent something unreadable (the
 * stream position is then unknown). Calls are serialized: one
 * request in flight per child. stderr is discarded, never read or logged, because it may hold secrets.
 */

export interface StdioSettings {
  command: readonly string[];
  protocol: McpProtocol;
  /** null: wait for the answer however long it takes, as the reference does. */
  requestTimeoutMs: number | null;
}

/** How long a closed stdout waits for the process exit status before being reported as a closed connection. */
const EXIT_GRACE_MS = 100;
/** The longest Content-Length header block accepted, its blank line included. */
const MAX_HEADER_BYTES = 8_192;

/** How messages are framed on the child's stdin and stdout. */
interface Framing {
  encode(body: string): Buffer;
  decoder(): FrameDecoder;
}

/** `Content-Length: <n>\r\n\r\n<body>`, read as the reference does (evidence §2.2). */
const contentLengthFraming: Framing = {
  encode: encodeContentLength,
  decoder: () => new ContentLengthDecoder({ maxHeaderBytes: MAX_HEADER_BYTES, maxBodyBytes: MAX_MCP_RESPONSE_BYTES }),
};

/** One JSON message per line (standard MCP stdio); blank lines are skipped. */
const newlineFraming: Framing = {
  encode: encodeLine,
  decoder: () => new LineDecoder({ maxLineBytes: MAX_MCP_RESPONSE_BYTES }),
};

/** An unreadable response in the reference's words (evidence §2.2). */
function framingFailure(problem: FrameError): McpProviderFailure {
  switch (problem.reason) {
    case "missing content length":
      return failure("missing content length header");
    case "invalid content length":
      return failure("invalid content length");
    case "header too large":
    case "payload too large":
      return failure("mcp response too large");
  }
}

/** A spawned child with a message reader over its stdout. Once it failed, it stays failed. */
class ChildConnection {
  readonly started: Promise<void>;
  /** True once the `mcp` handshake (if any) is done and calls may be sent. */
  ready = false;
  /** Null once a response could not be read: the stream position is then unknown, so nothing more is read. */
  private decoder: FrameDecoder | null;
  private broken: McpProviderFailure | null = null;
  private waiter: (() => void) | null = null;
  private readonly exited: Promise<unknown>;

  constructor(
    private readonly child: ChildProcess,
    private readonly framing: Framing,
  ) {
    this.decoder = framing.decoder();
    this.exited = once(child, "close").catch(() => undefined);
    const spawnFailure = transientFailure("failed to spawn mcp provider");
    this.started = once(child, "spawn").then(
      () => undefined,
      () => {
        throw spawnFailure;
      },
    );
    child.on("error", () => this.fail(spawnFailure));
    child.on("close", (code, signal) => this.fail(transientFailure(`mcp process exited: ${exitStatus(code, signal)}`)));
    child.stdin?.on("error", () => undefined);
    child.stdout?.on("error", () => this.fail(transientFailure("mcp read failed")));
    child.stdout?.on("data", (chunk: Buffer) => this.receive(chunk));
    child.stdout?.on("end", () => {
      setTimeout(() => this.fail(transientFailure("mcp connection closed")), EXIT_GRACE_MS).unref();
    });
  }

  get alive(): boolean {
    return this.broken === null;
  }

  async write(body: string): Promise<void> {
    if (this.broken !== null) throw this.broken;
    const stdin = this.child.stdin;
    if (stdin === null) throw transientFailure("mcp write failed");
    await new Promise<void>((resolve, reject) => {
      stdin.write(this.framing.encode(body), (error) =>
        error ? reject(transientFailure("mcp write failed")) : resolve(),
      );
    });
  }

  /** The next complete message; messages already received are delivered even after the child died. */
  async nextMessage(): Promise<Buffer> {
    for (;;) {
      const decoded = this.decodeBuffered();
      if (decoded !== null) return decoded;
      if (this.broken !== null) throw this.broken;
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
    }
  }

  kill(): void {
    this.fail(transientFailure("mcp connection closed"));
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
  }

  async close(): Promise<void> {
    this.kill();
    if (this.child.pid !== undefined) await this.exited;
  }

  private decodeBuffered(): Buffer | null {
    const decoded = this.decoder?.next() ?? null;
    if (decoded === null || decoded.kind === "message") return decoded?.body ?? null;
    const unreadable = framingFailure(decoded);
    this.decoder = null;
    this.fail(unreadable);
    this.kill();
    throw unreadable;
  }

  private receive(chunk: Buffer): void {
    this.decoder?.push(chunk);
    this.wake();
  }

  private fail(cause: McpProviderFailure): void {
    this.broken ??= cause;
    this.wake();
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.();
  }
}

/** The exit status as Rust's `ExitStatus` displays it, e.g. `exit status: 3` or `signal: 9 (SIGKILL)`. */
function exitStatus(code: number | null, signal: NodeJS.Signals | null): string {
  if (code !== null) return `exit status: ${code}`;
  if (signal !== null) return `signal: ${constants.signals[signal]} (${signal})`;
  return "unknown";
}

export class StdioTransport implements McpTransport {
  private connection: ChildConnection | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  private readonly framing: Framing;

  constructor(private readonly settings: StdioSettings) {
    this.framing = settings.protocol === "mcp" ? newlineFraming : contentLengthFraming;
  }

  request(call: RpcCall): Promise<JsonObject> {
    const result = this.queue.then(() => this.requestWithTimeout(call));
    this.queue = result.catch(() => undefined);
    return result;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.connection?.close();
    this.connection = null;
  }

  private async requestWithTimeout(call: RpcCall): Promise<JsonObject> {
    const timeoutMs = this.settings.requestTimeoutMs;
    if (timeoutMs === null) return this.requestNow(call);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(transientFailure("mcp request timed out"));
        this.connection?.kill();
      }, timeoutMs);
    });
    const attempt = this.requestNow(call);
    attempt.catch(() => undefined);
    try {
      return await Promise.race([attempt, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async requestNow(call: RpcCall): Promise<JsonObject> {
    const connection = await this.readyConnection();
    return exchange(connection, call, this.settings.protocol);
  }

  private async readyConnection(): Promise<ChildConnection> {
    if (this.closed) throw failure("mcp provider closed");
    const current = this.connection;
    if (current?.alive && current.ready) return current;
    current?.kill();
    const connection = this.spawn();
    this.connection = connection;
    await connection.started;
    if (this.settings.protocol === "mcp") {
      negotiatedVersion(await exchange(connection, initializeCall(), "mcp"));
      await connection.write(INITIALIZED_NOTIFICATION);
    }
    connection.ready = true;
    return connection;
  }

  private spawn(): ChildConnection {
    const [program = "", ...args] = this.settings.command;
    try {
      return new ChildConnection(spawn(program, args, { stdio: ["pipe", "pipe", "ignore"] }), this.framing);
    } catch {
      throw transientFailure("failed to spawn mcp provider");
    }
  }
}

/**
 * Writes `call` and reads until its response. In the `mcp` protocol, requests and notifications from the server are
 * answered or skipped on the way. A failure here leaves the stream in an unknown state, so the child is replaced.
 */
async function exchange(connection: ChildConnection, call: RpcCall, protocol: McpProtocol): Promise<JsonObject> {
  try {
    await connection.write(call.body);
    for (;;) {
      const message = parseMessage(await connection.nextMessage());
      if (protocol === "decision_gate" || !isServerMessage(message)) return message;
      const reply = replyToServerMessage(message);
      if (reply !== null) await connection.write(reply);
    }
  } catch (error) {
    connection.kill();
    throw error;
  }
}
