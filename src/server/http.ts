import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { DecisionGateError, InvalidRequestError, JsonParseError, LimitError } from "../core/errors.js";
import { parseJsonBytes } from "../json/parse.js";
import { InvalidCorrelationIdError, type ServerCorrelationIds, sanitizeClientCorrelationId } from "./correlation.js";
import { type DgInput, refusalAnswer, serveDgMessage } from "./dialects/dg-rpc.js";
import { createMcpServer, sdkMessage } from "./dialects/mcp.js";
import { StatelessMcpHttp } from "./dialects/mcp-http.js";
import { createListener, credentialsOf, type ListenerSettings, singleHeader } from "./listener.js";
import { BEARER_CHALLENGE, type MetricsSettings, serveMetrics } from "./metrics-endpoint.js";
import { serveResourceMetadata } from "./oauth/metadata-route.js";
import type { OAuthResourceServer } from "./oauth/resource-server.js";
import type { Observers } from "./observe.js";
import { requireJsonBody } from "./request-guard.js";
import type { Authentication, RequestInfo, ToolRouter } from "./router.js";
import type { WireError } from "./wire-errors.js";

export interface HttpSettings extends ListenerSettings {
  /** `sse` answers `/rpc` with one `text/event-stream` event instead of a JSON body. */
  transport: "http" | "sse";
  maxInflight: number;
  /** Adds `WWW-Authenticate` to `unauthenticated` answers (bearer mode). */
  bearerChallenge: boolean;
  /** `mode = "oauth"`: publishes the protected-resource metadata and words the `WWW-Authenticate` challenges. */
  oauth: OAuthResourceServer | null;
  /** `/metrics` on this listener and the token it needs; null when `[server.metrics] bind` moves it elsewhere. */
  metrics: MetricsSettings | null;
}

export interface HttpHooks extends Omit<Observers, "auth"> {
  /** Whether every store can serve (`/readyz`). */
  ready(): Promise<boolean>;
}

interface RequestState {
  clientCorrelationId: string | null;
  serverCorrelationId: string;
  /** The JSON-RPC method once read, for the audit line of a request refused before it is handled. */
  method: string | null;
  /** Established once the body has arrived (`admit`), and reused by every message of the request. */
  authentication?: Authentication;
}

const STATE = Symbol("decision-gate request state");
/** The routes of the two dialects: JSON bodies only, audited, and counted against `max_inflight`. */
const DIALECT_ROUTES = new Set(["/rpc", "/mcp"]);
type TaggedRequest = FastifyRequest & { [STATE]?: RequestState };

/**
 * The HTTP face of the server: the Decision Gate dialect on `POST /rpc` (JSON, or one SSE event), standard MCP on
 * `POST /mcp` (Streamable HTTP, stateless), `GET /healthz`, `GET /readyz` and `GET /metrics`. It does no tool
 * policy: it refuses what a browser could send from another site (D17), collects credentials and correlation ids,
 * and hands every message to the router.
 */
export function createHttpApp(
  router: ToolRouter,
  settings: HttpSettings,
  ids: ServerCorrelationIds,
  hooks: HttpHooks,
): FastifyInstance {
  const { app, connections, guard } = createListener(settings, hooks.log);
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
    const state: RequestState = { clientCorrelationId: null, serverCorrelationId: ids.next(), method: null };
    request[STATE] = state;
    reply.header("x-server-correlation-id", state.serverCorrelationId);
    guard.checkSource(request.headers);
    if (!isDialectRoute(request)) return;
    // Before the body is read: other types are what a page on another site may send without the browser asking.
    if (request.method === "POST") requireJsonBody(request.headers["content-type"]);
    const header = singleHeader(request.headers, "x-correlation-id");
    if (header !== null) {
      state.clientCorrelationId = sanitizeClientCorrelationId(header);
      reply.header("x-correlation-id", state.clientCorrelationId);
    }
  });

  /**
   * Once the body has arrived, a request whose credentials authenticate takes an in-flight slot, and its
   * connection stops counting as unauthenticated. Other requests take no slot: the router refuses them without
   * running anything. So callers that trickle bodies, or have no credentials, cannot hold the slots.
   */
  const admit = async (request: TaggedRequest, reply: FastifyReply) => {
    const authentication = await router.authenticate(credentialsOf(request, "http"));
    (request[STATE] as RequestState).authentication = authentication;
    if ("refusal" in authentication) return;
    connections.authenticated(request.raw.socket);
    if (inflight >= settings.maxInflight) throw new LimitError("inflight_limit", "server overloaded");
    inflight++;
    reply.raw.once("close", () => inflight--);
  };

  // A refused request is audited like a handled one, and its audit lines are written before the refusal is sent.
  app.setErrorHandler(async (error, request: TaggedRequest, reply) => {
    const refusal = requestError(error);
    const state = request[STATE];
    const input: DgInput = { refusal, method: state?.method ?? null, requestBytes: bodyOf(request).length };
    const answer =
      isDialectRoute(request) && state !== undefined
        ? await serveDgMessage(router, input, requestInfo(request, transportOf(request, settings)))
        : await hooks.audit.flush().then(() => refusalAnswer(refusal));
    challengeIfRefused(reply, settings, answer.error);
    if (refusal instanceof InvalidCorrelationIdError) reply.removeHeader("x-correlation-id");
    if (transportOf(request, settings) === "sse") return sendRpc(reply, settings, answer.httpStatus, answer.text);
    return reply.code(answer.httpStatus).type("application/json").send(answer.text);
  });

  app.get("/healthz", async () => ({ status: "ok" }));
  if (settings.oauth !== null) serveResourceMetadata(app, settings.oauth);
  if (settings.metrics !== null) serveMetrics(app, hooks.metrics, settings.metrics);
  app.get("/readyz", async (_request, reply) => {
    const ready = await hooks.ready().catch(() => false);
    return reply.code(ready ? 200 : 503).send({ status: ready ? "ready" : "not_ready" });
  });

  app.post("/rpc", { preHandler: admit }, async (request: TaggedRequest, reply) => {
    const answer = await serveDgMessage(router, { body: bodyOf(request) }, requestInfo(request, settings.transport));
    challengeIfRefused(reply, settings, answer.error);
    return sendRpc(reply, settings, answer.httpStatus, answer.text);
  });

  const mcp = new StatelessMcpHttp((requestInfoOf) => createMcpServer(router, requestInfoOf));
  app.post("/mcp", { preHandler: admit }, async (request: TaggedRequest, reply) => {
    const parsed = parseMcpBody(bodyOf(request));
    const method = methodOf(parsed);
    (request[STATE] as RequestState).method = method;
    // Credentials that do not authenticate get HTTP 401 before the MCP server sees the request, as MCP clients expect.
    await router.admit(requestInfo(request, "http"), method, toolOf(parsed));
    const answer = await mcp.handle(request.headers, parsed, {
      ...requestInfo(request, "http"),
      jsonRpcId: jsonRpcIdOf(parsed),
    });
    reply.code(answer.status);
    return answer.body === null ? reply.send() : reply.header("content-type", "application/json").send(answer.body);
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

function isDialectRoute(request: FastifyRequest): boolean {
  return DIALECT_ROUTES.has(request.routeOptions.url ?? "");
}

/** `/rpc` answers in the configured transport (SSE or JSON); `/mcp` and the other routes in JSON. */
function transportOf(request: FastifyRequest, settings: HttpSettings): "http" | "sse" {
  return request.routeOptions.url === "/rpc" ? settings.transport : "http";
}

function requestInfo(request: TaggedRequest, transport: "http" | "sse"): RequestInfo {
  const state = request[STATE] as RequestState;
  const credentials = credentialsOf(request, transport);
  return {
    transport,
    dialect: request.url.startsWith("/mcp") ? "mcp" : "dg",
    peerIp: credentials.peerIp,
    requestId: null,
    clientCorrelationId: state.clientCorrelationId,
    serverCorrelationId: state.serverCorrelationId,
    credentials,
    authentication: state.authentication,
    headers: request.headers,
  };
}

function bodyOf(request: FastifyRequest): Uint8Array {
  return Buffer.isBuffer(request.body) ? request.body : new Uint8Array();
}

/**
 * MCP bodies are parsed losslessly too, so tool arguments keep exact 64-bit integers. Batches are refused: the
 * 2025-06-18 revision of MCP removed them, and each message of one would otherwise escape `max_inflight`.
 */
function parseMcpBody(body: Uint8Array): unknown {
  let message: ReturnType<typeof parseJsonBytes>;
  try {
    message = parseJsonBytes(body);
  } catch (error) {
    if (error instanceof JsonParseError) return undefined;
    throw error;
  }
  if (Array.isArray(message)) throw new InvalidRequestError("invalid request: JSON-RPC batches are not supported");
  return sdkMessage(message);
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

/** The message's JSON-RPC id as the client sent it (the MCP server sees another), for tracing. */
function jsonRpcIdOf(message: unknown): string | number | undefined {
  const id = (message as { id?: unknown } | undefined)?.id;
  return typeof id === "string" || typeof id === "number" ? id : undefined;
}

/** The tool a `tools/call` message names, for the scope check before the MCP server sees the request. */
function toolOf(message: unknown): string | null {
  const call = message as { method?: unknown; params?: { name?: unknown } } | undefined;
  return call?.method === "tools/call" && typeof call.params?.name === "string" ? call.params.name : null;
}

function challengeIfRefused(reply: FastifyReply, settings: HttpSettings, error: WireError | null): void {
  const challenge =
    settings.oauth !== null
      ? settings.oauth.challenge(error)
      : error?.kind === "unauthenticated" && settings.bearerChallenge
        ? BEARER_CHALLENGE
        : null;
  if (challenge !== null) reply.header("www-authenticate", challenge);
}

function sendRpc(reply: FastifyReply, settings: HttpSettings, status: number, body: string) {
  reply.code(status);
  if (settings.transport === "sse") {
    return reply.type("text/event-stream").header("cache-control", "no-cache").send(`data: ${body}\n\n`);
  }
  return reply.type("application/json").send(body);
}
