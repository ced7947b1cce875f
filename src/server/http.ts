import type { IncomingHttpHeaders } from "node:http";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { DecisionGateError, JsonParseError, LimitError } from "../core/errors.js";
import { parseJsonBytes } from "../json/parse.js";
import { compactJson } from "../json/write.js";
import type { Credentials } from "./auth.js";
import { InvalidCorrelationIdError, type ServerCorrelationIds, sanitizeClientCorrelationId } from "./correlation.js";
import { errorResponse, handleDgMessage } from "./dialects/dg-rpc.js";
import { createMcpServer, sdkMessage } from "./dialects/mcp.js";
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

export interface HttpHooks {
  /** Whether every store can serve (`/readyz`). */
  ready(): Promise<boolean>;
}

interface RequestState {
  clientCorrelationId: string | null;
  serverCorrelationId: string;
}

const STATE = Symbol("decision-gate request state");
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
  const app = Fastify({ bodyLimit: settings.maxBodyBytes, ...(settings.https ? { https: settings.https } : {}) });
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
    if (request.url === "/healthz" || request.url === "/readyz") return;
    const header = singleHeader(request.headers, "x-correlation-id");
    if (header !== null) {
      state.clientCorrelationId = sanitizeClientCorrelationId(header);
      reply.header("x-correlation-id", state.clientCorrelationId);
    }
    if (inflight >= settings.maxInflight) throw new LimitError("inflight_limit", "server overloaded");
    inflight++;
    reply.raw.once("close", () => inflight--);
  });

  app.setErrorHandler((error, request: TaggedRequest, reply) =>
    sendError(reply, settings, requestError(error), request),
  );

  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/readyz", async (_request, reply) => {
    const ready = await hooks.ready().catch(() => false);
    return reply.code(ready ? 200 : 503).send({ status: ready ? "ready" : "not_ready" });
  });

  app.post("/rpc", async (request: TaggedRequest, reply) => {
    const outcome = await handleDgMessage(router, bodyOf(request), requestInfo(request, settings.transport));
    if (outcome.error?.kind === "unauthenticated" && settings.bearerChallenge) {
      reply.header("www-authenticate", 'Bearer realm="decision-gate"');
    }
    return sendRpc(reply, settings, outcome.httpStatus, compactJson(outcome.response));
  });

  app.post("/mcp", async (request: TaggedRequest, reply) => {
    const parsed = parseMcpBody(bodyOf(request));
    const server = createMcpServer(router, () => requestInfo(request, "http", ids.next()));
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
    clientSubject: singleHeader(request.headers, "x-decision-gate-client-subject"),
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

function sendError(reply: FastifyReply, settings: HttpSettings, error: unknown, request: TaggedRequest) {
  const wire = toWireError(error);
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
