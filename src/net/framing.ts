/*
 * Message framing on byte streams, one implementation for every stdio peer: the server's stdio, the CLI's stdio
 * client and the external MCP provider transport.
 *
 * - Content-Length (the Decision Gate dialect, LSP-style): header lines end with `\n` (CRLF accepted) up to the first
 *   blank line; only a line starting with `Content-Length:` counts (exact case, prefix match, value trimmed, the last
 *   such line wins), other lines are ignored; then exactly that many body bytes. The reference reads it this way on
 *   both sides it speaks it (interface §3.1 for its server, evidence §2.2 for its provider client), so there is one
 *   reader and no option.
 * - Newline-delimited (standard MCP on stdio): one message per line, blank lines skipped.
 *
 * Decoders are incremental: push bytes as they arrive, pull whole messages. Everything is byte-level, so a UTF-8
 * character split across reads stays whole. Limits come from the caller. A problem is returned as data for the caller
 * to word in its own errors; pulling again after one reads on: past an oversized body or line, or, after an unusable
 * header (whose body length is unknown), from the next `Content-Length:` (a JSON body never holds one outside a
 * string). A caller that gives up at the first problem simply stops pulling.
 */

export interface ContentLengthLimits {
  /** The longest header block, its blank line included. */
  maxHeaderBytes: number;
  /** The largest body a header may announce. */
  maxBodyBytes: number;
  /** Blank lines before a header are passed over (a peer that ends each body with a newline) instead of ending it. */
  skipLeadingBlankLines?: boolean;
}

export interface LineLimits {
  /** The longest line, without its `\n`. */
  maxLineBytes: number;
}

export type HeaderProblem = "header too large" | "missing content length" | "invalid content length";

export type ContentLengthError =
  | { kind: "error"; reason: HeaderProblem }
  /** `bytes`: the length the header announced. */
  | { kind: "error"; reason: "payload too large"; bytes: number };
/** A line past the limit (reported before its end is read, so its length is not known). */
export type LineError = { kind: "error"; reason: "payload too large" };
export type FrameError = ContentLengthError | LineError;

export type Decoded<Problem extends FrameError = FrameError> = { kind: "message"; body: Buffer } | Problem;

export interface FrameDecoder<Problem extends FrameError = FrameError> {
  push(chunk: Uint8Array): void;
  /** The next whole message or problem, or null while more bytes are needed. */
  next(): Decoded<Problem> | null;
  /** At end of input, once `next` returned null: a last message the input ended without its terminator, if any. */
  end(): Decoded<Problem> | null;
}

const LF = 0x0a;
const LENGTH_HEADER = "Content-Length:";
const LENGTH_HEADER_BYTES = Buffer.from(LENGTH_HEADER, "latin1");
/**
 * Decimal digits, an optional `+` before them. Up to 15 digits keep the length exact in a double; a longer value is
 * invalid rather than a length to wait for or skip.
 */
const LENGTH_VALUE = /^\+?\d{1,15}$/;

export function encodeContentLength(body: string | Uint8Array): Buffer {
  const bytes = typeof body === "string" ? Buffer.from(body, "utf8") : body;
  return Buffer.concat([Buffer.from(`Content-Length: ${bytes.length}\r\n\r\n`, "latin1"), bytes]);
}

/** `body` must hold no raw newline (compact JSON never does). */
export function encodeLine(body: string): Buffer {
  return Buffer.from(`${body}\n`, "utf8");
}

/** Every message and problem of a whole stream, in order, then whatever its end completes. */
export async function* decodeStream<Problem extends FrameError>(
  chunks: AsyncIterable<Uint8Array>,
  decoder: FrameDecoder<Problem>,
): AsyncGenerator<Decoded<Problem>> {
  for await (const chunk of chunks) {
    decoder.push(chunk);
    for (let decoded = decoder.next(); decoded !== null; decoded = decoder.next()) yield decoded;
  }
  const last = decoder.end();
  if (last !== null) yield last;
}

/** `Content-Length: <n>` header lines, a blank line, then n body bytes. */
export class ContentLengthDecoder implements FrameDecoder<ContentLengthError> {
  private readonly bytes = new ByteQueue();
  /** Body bytes of an oversized frame still to drop. */
  private skip = 0;
  /** After an unusable header: input is dropped up to the next `Content-Length:`. */
  private resync = false;
  /** The header being read: where its next line starts and what its last `Content-Length:` said. */
  private header: HeaderScan = { lineStart: 0, length: "missing" };
  /** The body length once its header was read. */
  private bodyLength: number | null = null;

  constructor(private readonly limits: ContentLengthLimits) {}

  push(chunk: Uint8Array): void {
    this.bytes.push(chunk);
  }

  next(): Decoded<ContentLengthError> | null {
    if (!this.skipBody() || !this.resynchronise()) return null;
    if (this.bodyLength === null) {
      const header = this.readHeader();
      if (header === null) return null;
      if (typeof header === "string") {
        this.bytes.drop(1);
        this.resync = true;
        return { kind: "error", reason: header };
      }
      this.bytes.drop(header.bodyStart);
      if (header.length > this.limits.maxBodyBytes) {
        this.skip = header.length;
        return { kind: "error", reason: "payload too large", bytes: header.length };
      }
      this.bodyLength = header.length;
    }
    if (this.bytes.length < this.bodyLength) return null;
    const body = this.bytes.take(this.bodyLength);
    this.bodyLength = null;
    return { kind: "message", body };
  }

  /** An incomplete frame at end of input is dropped. */
  end(): null {
    return null;
  }

  /** Drops what is buffered of an oversized body; true once it is all gone. */
  private skipBody(): boolean {
    const dropped = Math.min(this.skip, this.bytes.length);
    this.bytes.drop(dropped);
    this.skip -= dropped;
    return this.skip === 0;
  }

  /** Drops input up to the next `Content-Length:` when resynchronising; true once at a header (or not resyncing). */
  private resynchronise(): boolean {
    if (!this.resync) return true;
    const pending = this.bytes.peek(this.bytes.length);
    const at = pending.indexOf(LENGTH_HEADER_BYTES);
    // Keeps a tail that may be the start of a header split across reads.
    this.bytes.drop(at === -1 ? Math.max(0, pending.length - LENGTH_HEADER_BYTES.length + 1) : at);
    this.resync = at === -1;
    return !this.resync;
  }

  /** The complete header's body offset and length, why it is unusable, or null until it is complete. */
  private readHeader(): { bodyStart: number; length: number } | HeaderProblem | null {
    const scan = this.header;
    for (;;) {
      const lineEnd = this.bytes.indexOf(LF, scan.lineStart);
      const scanned = lineEnd === -1 ? this.bytes.length : lineEnd + 1;
      if (scanned > this.limits.maxHeaderBytes) return this.endHeader("header too large");
      if (lineEnd === -1) return null;
      const line = this.bytes.peek(lineEnd).toString("utf8", scan.lineStart, lineEnd);
      const firstLine = scan.lineStart === 0;
      scan.lineStart = lineEnd + 1;
      if (line.trim() === "") {
        if (firstLine && this.limits.skipLeadingBlankLines === true) {
          this.bytes.drop(scan.lineStart);
          scan.lineStart = 0;
          continue;
        }
        if (typeof scan.length === "number") return this.endHeader({ bodyStart: lineEnd + 1, length: scan.length });
        return this.endHeader(scan.length === "missing" ? "missing content length" : "invalid content length");
      }
      if (line.startsWith(LENGTH_HEADER)) {
        const value = line.slice(LENGTH_HEADER.length).trim();
        scan.length = LENGTH_VALUE.test(value) ? Number(value) : "invalid";
      }
    }
  }

  private endHeader<T>(outcome: T): T {
    this.header = { lineStart: 0, length: "missing" };
    return outcome;
  }
}

interface HeaderScan {
  lineStart: number;
  length: number | "missing" | "invalid";
}

/** One message per `\n`-terminated line; lines holding only JSON whitespace are skipped. */
export class LineDecoder implements FrameDecoder<LineError> {
  private readonly bytes = new ByteQueue();
  /** Bytes already searched for a newline. */
  private scanned = 0;
  /** Dropping the rest of an oversized line. */
  private skipping = false;

  constructor(private readonly limits: LineLimits) {}

  push(chunk: Uint8Array): void {
    this.bytes.push(chunk);
  }

  next(): Decoded<LineError> | null {
    for (;;) {
      const newline = this.bytes.indexOf(LF, this.scanned);
      if (newline === -1) return this.partialLine();
      const line = this.bytes.take(newline + 1).subarray(0, newline);
      this.scanned = 0;
      if (this.skipping) this.skipping = false;
      else if (line.length > this.limits.maxLineBytes) return lineTooLarge();
      else if (!isBlank(line)) return { kind: "message", body: line };
    }
  }

  end(): Decoded<LineError> | null {
    const rest = this.bytes.take(this.bytes.length);
    this.scanned = 0;
    return this.skipping || isBlank(rest) ? null : { kind: "message", body: rest };
  }

  /** A line still without its newline is reported as soon as it is too long, then dropped up to its newline. */
  private partialLine(): LineError | null {
    const seen = this.bytes.length;
    if (this.skipping || seen > this.limits.maxLineBytes) {
      this.bytes.drop(seen);
      this.scanned = 0;
      if (this.skipping) return null;
      this.skipping = true;
      return lineTooLarge();
    }
    this.scanned = seen;
    return null;
  }
}

function lineTooLarge(): LineError {
  return { kind: "error", reason: "payload too large" };
}

/** Only JSON whitespace: space, tab, CR, LF. */
function isBlank(bytes: Uint8Array): boolean {
  return bytes.every((byte) => byte === 0x20 || byte === 0x09 || byte === 0x0d || byte === LF);
}

/** Bytes received and not yet consumed, kept as the chunks they came in so that a long body is joined once. */
class ByteQueue {
  private chunks: Buffer[] = [];
  length = 0;

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
    this.length += chunk.length;
  }

  /** The first `count` bytes as one buffer (joining only the chunks they span). */
  peek(count: number): Buffer {
    let spanned = 0;
    for (let joined = 0; joined < count; spanned++) joined += (this.chunks[spanned] as Buffer).length;
    if (spanned > 1) this.chunks.splice(0, spanned, Buffer.concat(this.chunks.slice(0, spanned)));
    return (this.chunks[0] ?? Buffer.alloc(0)).subarray(0, count);
  }

  drop(count: number): void {
    this.length -= count;
    let left = count;
    while (left > 0) {
      const first = this.chunks[0] as Buffer;
      if (first.length > left) {
        this.chunks[0] = first.subarray(left);
        return;
      }
      this.chunks.shift();
      left -= first.length;
    }
  }

  take(count: number): Buffer {
    const taken = this.peek(count);
    this.drop(count);
    return taken;
  }

  /** The position of the first `byte` at or after `from`, or -1. */
  indexOf(byte: number, from: number): number {
    let base = 0;
    for (const chunk of this.chunks) {
      if (from < base + chunk.length) {
        const at = chunk.indexOf(byte, Math.max(0, from - base));
        if (at !== -1) return base + at;
      }
      base += chunk.length;
    }
    return -1;
  }
}
