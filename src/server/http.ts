import type { IncomingHttpHeaders } from "node:http";
import type { Socket } from "node:net";
import { TLSSocket } from "node:tls";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { DecisionGateError, JsonParseError, LimitError } from "../core/errors.js";
import { parseJsonBytes } from "../json/parse.js";
import { compactJson } from "../json/write.js";
import type { Credentials } from "./auth.js";
import { InvalidCorrelationIdError, type ServerCorrelationIds, sanitizeClientCorrelationId } from "./correlation.js";
import { errorResponse, handleDgMessage } from "./dialects/dg-rpc.js";
import { createMcpServer, sdkMessage } from "./dialects/mcp.js";
import { type Observers, observeRequest } from "./observe.js";
import type { RequestInfo, ToolRouter } from "./router.js";
import { toWireError } from "./wire-errors.js";

export interface HttpSettings {
  /** `sse` answers `/rpc` with one `text/event-stream` event instead of a JSON body. */
  transport: "http" | "sse";
  maxBodyBytes: number;
  maxInflight: number;
  /** Adds `WWW-Authenticate` to `unauthenticated` answers (bearer mode). */
  bearerChallenge: boolean;
  https?: { key: Buffer; cert: Buffer; ca?: Buffer; requestCert: boolean; rejectUnauthorized: boolean };
}

export interface HttpHooks extends Observers {
  /** Whether every store can serve (`/readyz`). */
  ready(): Promise<boolean>;
}

interface RequestState {
  clientCorrelationId: string | null;
  serverCorrelationId: string;
}

const STATE = Symbol("decision-gate request state");
/** Requests with larger headers are refused (431) before they reach any handler. */
const MAX_HEADER_BYTES = 16_384;
type TaggedRequest = FastifyRequest & { [STATE]?: RequestState };

/**
 * The HTTP face of the server: the Decision Gate dialect on `POST /rpc` (JSON, or one SSE event), standard MCP on
 * `POST /mcp` (Streamable HTTP, stateless), `GET /healthz` and `GET /readyz`. It does no policy: it collects
 * credentials and correlation ids and hands every message to the router.
 */
export function createHttpApp(
  router: ToolRouter,
  settings: HttpSettings,
  ids: ServerCorrelationIds,
  hooks: HttpHooks,
): FastifyInstance {
  const server = { maxHeaderSize: MAX_HEADER_BYTES };
  const app = Fastify({
    bodyLimit: settings.maxBodyBytes,
    ...(settings.https ? { https: { ...settings.https, ...server } } : { http: server }),
  });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer" }, (_request, body, done) => done(null, body));
  let inflight = 0;
  let closing = false;
  // Graceful shutdown: in-flight requests finish, and their connections close instead of idling in keep-alive.
  app.addHook("preClose", async () => {
    closing = true;
    app.server.closeIdleConnections();
  });
  app.addHook("onSend", async (_request, reply) => {
    if (closing) reply.header("connection", "close");
  });

  app.addHook("onRequest", async (request: TaggedRequest, reply) => {
    const state: RequestState = { clientCorrelationId: null, serverCorrelationId: ids.next() };
    request[STATE] = state;
    reply.header("x-server-correlation-id", state.serverCorrelationId);
    if (["/healthz", "/readyz", "/metrics"].includes(request.url)) return;
    const header = singleHeader(request.headers, "x-correlation-id");
    if (header !== null) {
      state.clientCorrelationId = sanitizeClientCorrelationId(header);
      reply.header("x-correlation-id", state.clientCorrelationId);
    }
    if (inflight >= settings.maxInflight) throw new LimitError("inflight_limit", "server overloaded");
    inflight++;
    reply.raw.once("close", () => inflight--);
  });

  // Audit lines of a refused request (e.g. an unauthenticated one) are written before the refusal is sent, too.
  app.setErrorHandler(async (error, request: TaggedRequest, reply) => {
    await hooks.audit.flush();
    return sendError(reply, settings, requestError(error), request);
  });

  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/metrics", async (_request, reply) =>
    reply.type(hooks.metrics.contentType).send(await hooks.metrics.text()),
  );
  app.get("/readyz", async (_request, reply) => {
    const ready = await hooks.ready().catch(() => false);
    return reply.code(ready ? 200 : 503).send({ status: ready ? "ready" : "not_ready" });
  });

  app.post("/rpc", async (request: TaggedRequest, reply) => {
    const info = requestInfo(request, settings.transport);
    const body = bodyOf(request);
    const outcome = await handleDgMessage(router, body, info);
    challengeIfUnauthenticated(reply, settings, outcome.error?.kind);
    const response = compactJson(outcome.response);
    await observeRequest(
      hooks,
      { ...info, requestId: outcome.requestId },
      {
        method: outcome.method,
        tool: outcome.tool,
        error: outcome.error,
        requestBytes: body.length,
        responseBytes: Buffer.byteLength(response),
        clientSubject: info.credentials.certificateSubject ?? info.credentials.subjectHeader,
      },
    );
    return sendRpc(reply, settings, outcome.httpStatus, response);
  });

  app.post("/mcp", async (request: TaggedRequest, reply) => {
    const parsed = parseMcpBody(bodyOf(request));
    // Credentials that do not authenticate get HTTP 401 before the MCP server sees the request, as MCP clients expect.
    router.admit(requestInfo(request, "http"), methodOf(parsed));
    const server = createMcpServer(router, () => requestInfo(request, "http", ids.next()), hooks);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    reply.hijack();
    reply.raw.on("close", () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(request.raw, reply.raw, parsed);
  });
  for (const method of ["GET", "DELETE"] as const) {
    app.route({
      method,
      url: "/mcp",
      handler: async (_request, reply) =>
        reply
          .code(405)
          .header("allow", "POST")
          .send({
            jsonrpc: "2.0",
            id: null,
            error: { code: -32000, message: "method not allowed: this server is stateless; use POST" },
          }),
    });
  }
  return app;
}

function requestInfo(request: TaggedRequest, transport: "http" | "sse", serverCorrelationId?: string): RequestInfo {
  const state = request[STATE] as RequestState;
  const credentials: Credentials = {
    transport,
    peerIp: request.socket.remoteAddress ?? null,
    authorization: singleHeader(request.headers, "authorization"),
    subjectHeader: singleHeader(request.headers, "x-decision-gate-client-subject"),
    certificateSubject: verifiedCertificateSubject(request.raw.socket),
  };
  return {
    transport,
    dialect: request.url.startsWith("/mcp") ? "mcp" : "dg",
    peerIp: credentials.peerIp,
    requestId: null,
    clientCorrelationId: state.clientCorrelationId,
    serverCorrelationId: serverCorrelationId ?? state.serverCorrelationId,
    credentials,
  };
}

/**
 * The subject of a client certificate the TLS handshake verified against the configured client CA, as
 * comma-separated `KEY=value` pairs in certificate order (e.g. `CN=agent-1,O=Example`); null otherwise.
 */
function verifiedCertificateSubject(socket: Socket): string | null {
  if (!(socket instanceof TLSSocket) || !socket.authorized) return null;
  const subject = socket.getPeerX509Certificate()?.subject;
  return subject === undefined ? null : subject.split("\n").join(",");
}

function singleHeader(headers: IncomingHttpHeaders, name: string): string | null {
  const value = headers[name];
  return typeof value === "string" ? value : Array.isArray(value) ? (value[0] ?? null) : null;
}

function bodyOf(request: FastifyRequest): Uint8Array {
  return Buffer.isBuffer(request.body) ? request.body : new Uint8Array();
}

/** MCP bodies are parsed losslessly too, so tool arguments keep exact 64-bit integers. */
function parseMcpBody(body: Uint8Array): unknown {
  try {
    return sdkMessage(parseJsonBytes(body));
  } catch (error) {
    if (error instanceof JsonParseError) return undefined;
    throw error;
  }
}

/** Errors raised before a message is handled: correlation id, limits, and Fastify's own (body size, parsing). */
function requestError(error: unknown): DecisionGateError | unknown {
  if (error instanceof DecisionGateError) return error;
  const code = (error as { code?: string }).code;
  if (code === "FST_ERR_CTP_BODY_TOO_LARGE") return new LimitError("request_too_large", "request body too large");
  return error;
}

/** The JSON-RPC method of a single message, for the audit line of a request refused before it is handled. */
function methodOf(message: unknown): string {
  const method = (message as { method?: unknown } | undefined)?.method;
  return typeof method === "string" ? method : "mcp";
}

function challengeIfUnauthenticated(reply: FastifyReply, settings: HttpSettings, kind: string | undefined): void {
  if (kind === "unauthenticated" && settings.bearerChallenge) {
    reply.header("www-authenticate", 'Bearer realm="decision-gate"');
  }
}

function sendError(reply: FastifyReply, settings: HttpSettings, error: unknown, request: TaggedRequest) {
  const wire = toWireError(error);
  challengeIfUnauthenticated(reply, settings, wire.kind);
  if (error instanceof InvalidCorrelationIdError) reply.removeHeader("x-correlation-id");
  const body = compactJson(errorResponse(null, wire, null));
  if (request.url.startsWith("/rpc")) return sendRpc(reply, settings, wire.httpStatus, body);
  return reply.code(wire.httpStatus).type("application/json").send(body);
}

function sendRpc(reply: FastifyReply, settings: HttpSettings, status: number, body: string) {
  reply.code(status);
  if (settings.transport === "sse") {
    return reply.type("text/event-stream").header("cache-control", "no-cache").send(`data: ${body}\n\n`);
  }
  return reply.type("application/json").send(body);
}
