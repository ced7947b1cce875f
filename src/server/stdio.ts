import type { Readable, Writable } from "node:stream";
import { InvalidRequestError, LimitError } from "../core/errors.js";
import {
  ContentLengthDecoder,
  decodeStream,
  encodeContentLength,
  type FrameDecoder,
  type FrameError,
  LineDecoder,
} from "../net/framing.js";
import type { Credentials } from "./auth.js";
import type { ServerCorrelationIds } from "./correlation.js";
import { serveDgMessage } from "./dialects/dg-rpc.js";
import { createMcpServer } from "./dialects/mcp.js";
import type { RequestInfo, ToolRouter } from "./router.js";
import { type Frame, serveMcpLines } from "./stdio-mcp.js";

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
    credentials: STDIO_CREDENTIALS,
  });
  if (dialect === "mcp") {
    return serveMcpLines(frames(stream, new LineDecoder({ maxLineBytes: maxBodyBytes })), output, () =>
      createMcpServer(router, requestInfo),
    );
  }
  const decoder = new ContentLengthDecoder({
    maxHeaderBytes: MAX_HEADER_BYTES,
    maxBodyBytes,
    skipLeadingBlankLines: true,
  });
  for await (const frame of frames(stream, decoder)) {
    const input = "body" in frame ? frame : { refusal: frame.problem, method: null, requestBytes: 0 };
    const answer = await serveDgMessage(router, input, requestInfo());
    output.write(encodeContentLength(answer.text));
  }
}

/** A stdio caller is the local user: nothing to present. */
const STDIO_CREDENTIALS: Credentials = {
  transport: "stdio",
  peerIp: null,
  authorization: null,
  subjectHeader: null,
  certificateSubject: null,
};

/**
 * The input's messages, each framing problem as the error it is answered with. Reading goes on after a problem
 * (docs/DIFFERENCES.md, "stdio keeps serving"): an oversized body or line is skipped, and after an unusable header
 * input is dropped up to the next `Content-Length:`.
 */
async function* frames(chunks: AsyncIterable<Buffer>, decoder: FrameDecoder): AsyncGenerator<Frame> {
  for await (const decoded of decodeStream(chunks, decoder)) {
    yield decoded.kind === "message" ? { body: decoded.body } : { problem: framingError(decoded.reason) };
  }
}

function framingError(reason: FrameError["reason"]): Error {
  if (reason === "payload too large") return new LimitError("request_too_large", "request body too large");
  const detail = reason === "header too large" ? "frame header too large" : "missing or invalid content length";
  return new InvalidRequestError(`invalid json-rpc request: ${detail}`);
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
