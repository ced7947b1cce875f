import pino from "pino";
import { ConfigError } from "../config/load.js";

/*
 * Where audit lines go: pino destinations, or an injected stream. Lines are serialized by `compactJson`, not by
 * a pino logger, whose serializer would add its own fields and does not know the lossless JSON model (bigint
 * integers).
 *
 * Standard error and the audit file are written in batches (one synchronous write per batch instead of one per
 * line; the write itself was most of the audit log's cost). A line waits in memory until the first of:
 *   - `flush()`: the transports await it before sending a response, so every request's lines are written before
 *     its answer leaves; the lines of all answers produced in one pass of the event loop share one write;
 *   - the end of the current event-loop turn (`setImmediate`), for lines no response waits for;
 *   - `BATCH_BYTES` buffered; `close()` (graceful shutdown); the process's `exit` event.
 * So a `kill -9` can lose only the lines logged in the current event-loop turn by requests not yet answered (and
 * startup events of that turn): at most a few milliseconds of events, none of an answered request.
 * Injected streams (tests) get every line at once.
 */

export interface LineSink {
  write(line: string): void;
  close(): Promise<void>;
}

/** A buffer larger than this is written at once. */
const BATCH_BYTES = 64 * 1024;
/**
 * Writes to standard error stay within PIPE_BUF (4096 bytes on Linux, at least 512 by POSIX), so that they remain
 * atomic when standard error is a pipe other processes write to as well: lines are never torn. A longer line is
 * written alone, as before. Appends to a regular file opened with O_APPEND are atomic at any size.
 */
const PIPE_CHUNK_BYTES = 4096;

/** Batched sinks that still hold lines, written on the process's `exit` event (also after an uncaught exception). */
const openBuffers = new Set<BufferedSink>();
let exitHookInstalled = false;

export class BufferedSink implements LineSink {
  private closed = false;
  private lines: string[] = [];
  /** UTF-8 size of each buffered line. */
  private sizes: number[] = [];
  private bytes = 0;
  private scheduled = false;
  private waiting: Promise<void> | null = null;
  private release: () => void = () => {};

  constructor(
    private readonly destination: { write(text: string): void },
    private readonly chunkBytes: number,
    private readonly closeDestination: () => Promise<void>,
    /** A batch could not be handed over (write errors themselves are emitted by the destination). */
    private readonly onError: (error: Error) => void,
  ) {}

  /** Resolves when every line buffered now in `sinks` has been written. */
  static flushed(sinks: readonly BufferedSink[]): Promise<void> {
    const pending = sinks.filter((sink) => sink.lines.length > 0).map((sink) => sink.flushSoon());
    if (pending.length === 0) return Promise.resolve();
    return pending.length === 1 ? (pending[0] as Promise<void>) : Promise.all(pending).then(() => {});
  }

  write(line: string): void {
    if (this.closed) {
      // As before batching: a line logged after shutdown reaches the (closed) destination, which refuses it.
      this.destination.write(line);
      return;
    }
    const size = Buffer.byteLength(line);
    this.lines.push(line);
    this.sizes.push(size);
    this.bytes += size;
    if (this.bytes >= BATCH_BYTES) {
      this.writeBuffered();
      return;
    }
    if (this.lines.length === 1) {
      openBuffers.add(this);
      installExitHook();
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.writeBuffered();
        });
      }
    }
  }

  /**
   * Writes the buffer after the tasks queued so far (microtasks): responses completed in the same pass each
   * call this right after logging their `mcp_request` line, and all their lines go out in one write.
   */
  private flushSoon(): Promise<void> {
    if (this.waiting === null) {
      this.waiting = new Promise<void>((resolve) => {
        this.release = resolve;
      });
      queueMicrotask(() => this.writeBuffered());
    }
    return this.waiting;
  }

  /** Writes every buffered line now, synchronously, in as few writes as the chunk size allows. */
  writeBuffered(): void {
    const { lines, sizes } = this;
    if (lines.length > 0) {
      this.lines = [];
      this.sizes = [];
      this.bytes = 0;
      openBuffers.delete(this);
      let chunk = "";
      let chunkSize = 0;
      try {
        for (const [index, line] of lines.entries()) {
          const size = sizes[index] ?? 0;
          if (chunk !== "" && chunkSize + size > this.chunkBytes) {
            this.destination.write(chunk);
            chunk = "";
            chunkSize = 0;
          }
          chunk += line;
          chunkSize += size;
        }
        this.destination.write(chunk);
      } catch (error) {
        // Runs from the event loop or the exit hook, with no caller to throw to: report, never crash the server.
        this.onError(error instanceof Error ? error : new Error(String(error)));
      }
    }
    const release = this.release;
    this.waiting = null;
    this.release = () => {};
    release();
  }

  async close(): Promise<void> {
    this.writeBuffered();
    this.closed = true;
    await this.closeDestination();
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const sink of [...openBuffers]) sink.writeBuffered();
  });
}

export function auditSink(
  path: string | undefined,
  stream: NodeJS.WritableStream | undefined,
  stderr: LineSink,
): LineSink {
  if (stream !== undefined) return streamSink(stream);
  return path === undefined ? stderr : fileSink(path, stderr);
}

export function streamSink(stream: NodeJS.WritableStream): LineSink {
  return { write: (line) => void stream.write(line), close: async () => {} };
}

export function fdSink(fd: number): LineSink {
  const destination = pino.destination({ dest: fd, sync: true });
  // Nowhere left to report a failing standard error; dropping the line beats crashing the server.
  destination.on("error", () => {});
  return new BufferedSink(
    destination,
    PIPE_CHUNK_BYTES,
    async () => {},
    () => {},
  );
}

function fileSink(path: string, stderr: LineSink): LineSink {
  const destination = openDestination(path);
  const warn = (error: Error) => stderr.write(`decision-gate-mcp: WARNING: audit log write failed: ${error.message}\n`);
  destination.on("error", warn);
  return new BufferedSink(
    destination,
    BATCH_BYTES,
    () =>
      new Promise((resolve) => {
        destination.once("close", () => resolve());
        destination.end();
      }),
    warn,
  );
}

function openDestination(path: string): ReturnType<typeof pino.destination> {
  try {
    return pino.destination({ dest: path, sync: true, append: true, mkdir: true });
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new ConfigError("config_io", `config io error: audit log open failed: ${detail}`);
  }
}
