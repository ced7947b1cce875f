import type { Readable, Writable } from "node:stream";
import { InvalidRequestError, LimitError } from "../core/errors.js";
import { compactJson } from "../json/write.js";
import type { ServerCorrelationIds } from "./correlation.js";
import { errorResponse, handleDgMessage } from "./dialects/dg-rpc.js";
import { createMcpServer } from "./dialects/mcp.js";
import { type Observers, observeRequest } from "./observe.js";
import type { RequestInfo, ToolRouter } from "./router.js";
import { type Frame, serveMcpLines } from "./stdio-mcp.js";
import { toWireError } from "./wire-errors.js";

const MAX_HEADER_BYTES = 8192;

/**
 * Serves one client on stdin/stdout until end of input. The framing is detected from the first bytes:
 * `Content-Length:` headers speak the Decision Gate dialect (LSP-style frames), `{` speaks standard MCP
 * (one JSON message per line). stdout carries only protocol messages.
 */
export async function serveStdio(
  router: ToolRouter,
  input: Readable,
  output: Writable,
  ids: ServerCorrelationIds,
  maxBodyBytes: number,
  observers: Observers,
): Promise<void> {
  const chunks = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const first = await firstMeaningfulChunk(chunks);
  if (first === null) return;
  const stream = prepend(first, chunks);
  const dialect = first[firstByteIndex(first)] === 0x7b ? "mcp" : "dg";
  const requestInfo = (): RequestInfo => ({
    transport: "stdio",
    dialect,
    peerIp: null,
    requestId: null,
    clientCorrelationId: null,
    serverCorrelationId: ids.next(),
    credentials: {
      transport: "stdio",
      peerIp: null,
      authorization: null,
      subjectHeader: null,
      certificateSubject: null,
    },
  });
  if (dialect === "mcp") {
    return serveMcpLines(jsonLines(stream, maxBodyBytes), output, () =>
      createMcpServer(router, requestInfo, observers),
    );
  }
  for await (const frame of contentLengthFrames(stream, maxBodyBytes)) {
    const info = requestInfo();
    const outcome =
      "body" in frame
        ? await handleDgMessage(router, frame.body, info)
        : {
            response: errorResponse(null, toWireError(frame.problem), null),
            requestId: null,
            method: null,
            tool: null,
            error: toWireError(frame.problem),
          };
    const response = compactJson(outcome.response);
    await observeRequest(
      observers,
      { ...info, requestId: outcome.requestId },
      {
        method: outcome.method,
        tool: outcome.tool,
        error: outcome.error,
        requestBytes: "body" in frame ? frame.body.length : 0,
        responseBytes: Buffer.byteLength(response),
      },
    );
    output.write(encodeFrame(response));
  }
}

export function encodeFrame(body: string): string {
  return `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

const LENGTH_HEADER = Buffer.from("Content-Length:");

/**
 * Splits Content-Length framed input. A frame whose header is unusable or whose body is too large yields a
 * problem, and reading goes on: an oversized body of known length is skipped; after an unusable header, whose
 * body length is unknown, input is dropped up to the next `Content-Length:` (a JSON body never holds one
 * outside a string), so one bad frame costs at most the frames it garbles, never the rest of the session.
 */
async function* contentLengthFrames(chunks: AsyncIterable<Buffer>, maxBodyBytes: number): AsyncGenerator<Frame> {
  let buffer = Buffer.alloc(0);
  let skip = 0;
  let resync = false;
  for await (const chunk of chunks) {
    buffer = Buffer.concat([buffer, chunk]);
    for (;;) {
      if (skip > 0) {
        const dropped = Math.min(skip, buffer.length);
        skip -= dropped;
        buffer = buffer.subarray(dropped);
        if (skip > 0) break;
      }
      if (resync) {
        const next = buffer.indexOf(LENGTH_HEADER);
        // Keeps a tail that may be the start of a header split across reads.
        buffer = buffer.subarray(next === -1 ? Math.max(0, buffer.length - LENGTH_HEADER.length + 1) : next);
        if (next === -1) break;
        resync = false;
      }
      const header = frameHeader(buffer);
      if (header === null) break;
      if ("unusable" in header) {
        yield { problem: new InvalidRequestError(`invalid json-rpc request: ${header.unusable}`) };
        buffer = buffer.subarray(1);
        resync = true;
        continue;
      }
      const { bodyStart, length } = header;
      if (length > maxBodyBytes) {
        yield { problem: new LimitError("request_too_large", "request body too large") };
        skip = length;
        buffer = buffer.subarray(bodyStart);
        continue;
      }
      if (buffer.length < bodyStart + length) break;
      yield { body: buffer.subarray(bodyStart, bodyStart + length) };
      buffer = buffer.subarray(bodyStart + length);
    }
  }
}

/**
 * Splits newline-delimited input into lines of bytes (so a UTF-8 character split across reads stays whole). A
 * line longer than `maxBodyBytes` yields a problem and is skipped up to its newline; blank lines are dropped.
 */
async function* jsonLines(chunks: AsyncIterable<Buffer>, maxBodyBytes: number): AsyncGenerator<Frame> {
  let buffer: Buffer = Buffer.alloc(0);
  let skipping = false;
  for await (const chunk of chunks) {
    const scanFrom = buffer.length;
    buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
    let start = 0;
    for (let newline = buffer.indexOf(0x0a, scanFrom); newline !== -1; newline = buffer.indexOf(0x0a, start)) {
      const line = buffer.subarray(start, newline);
      start = newline + 1;
      if (skipping) skipping = false;
      else if (line.length > maxBodyBytes) yield { problem: lineTooLarge() };
      else if (!isBlank(line)) yield { body: line };
    }
    buffer = buffer.subarray(start);
    if (!skipping && buffer.length > maxBodyBytes) {
      yield { problem: lineTooLarge() };
      skipping = true;
    }
    if (skipping) buffer = Buffer.alloc(0);
  }
  if (!skipping && !isBlank(buffer)) yield { body: buffer };
}

function lineTooLarge(): LimitError {
  return new LimitError("request_too_large", "request body too large");
}

function isBlank(bytes: Buffer): boolean {
  return firstByteIndex(bytes) === bytes.length;
}

/** The next frame's header: where its body starts and how long it is, why it is unusable, or null until complete. */
function frameHeader(buffer: Buffer): { bodyStart: number; length: number } | { unusable: string } | null {
  const header = headerEnd(buffer.subarray(0, MAX_HEADER_BYTES + 4));
  if (header === null) return buffer.length > MAX_HEADER_BYTES ? { unusable: "frame header too large" } : null;
  const length = contentLength(buffer.subarray(0, header.start).toString("latin1"));
  return length === null ? { unusable: "missing or invalid content length" } : { bodyStart: header.end, length };
}

/** The end of a header block: a blank line, with CRLF or LF line ends. */
function headerEnd(buffer: Buffer): { start: number; end: number } | null {
  const crlf = buffer.indexOf("\r\n\r\n");
  const lf = buffer.indexOf("\n\n");
  if (crlf === -1 && lf === -1) return null;
  if (lf === -1 || (crlf !== -1 && crlf < lf)) return { start: crlf, end: crlf + 4 };
  return { start: lf, end: lf + 2 };
}

/** The value of the last `Content-Length:` line (exact case, as in the reference), or null. */
function contentLength(header: string): number | null {
  let length: number | null = null;
  for (const line of header.split(/\r?\n/)) {
    if (!line.startsWith("Content-Length:")) continue;
    const value = line.slice("Content-Length:".length).trim();
    length = /^\d{1,15}$/.test(value) ? Number(value) : null;
  }
  return length;
}

async function firstMeaningfulChunk(chunks: AsyncIterator<Buffer>): Promise<Buffer | null> {
  let pending = Buffer.alloc(0);
  for (;;) {
    const next = await chunks.next();
    if (next.done) return null;
    pending = Buffer.concat([pending, next.value]);
    if (firstByteIndex(pending) < pending.length) return pending;
  }
}

function firstByteIndex(buffer: Buffer): number {
  let index = 0;
  while (index < buffer.length && [0x20, 0x09, 0x0a, 0x0d].includes(buffer[index] as number)) index++;
  return index;
}

async function* prepend(first: Buffer, rest: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  yield first;
  for (;;) {
    const next = await rest.next();
    if (next.done) return;
    yield next.value;
  }
}
