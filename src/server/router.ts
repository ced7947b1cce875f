import type { IncomingHttpHeaders } from "node:http";
import { DecisionGateError, LimitError, MethodNotFoundError } from "../core/errors.js";
import { decode } from "../core/wire/common.js";
import type { JsonValue } from "../json/value.js";
import { canonicalBytes } from "../json/write.js";
import { auditCorrelation } from "./audit.js";
import { type AuthSettings, authorizeTool, type Credentials, authenticate as checkCredentials } from "./auth.js";
import type { AuthContext, CallContext } from "./context.js";
import { resourceUriParam } from "./docs/catalog.js";
import { type Observers, observeRequest } from "./observe.js";
import type { RateLimiter } from "./rate-limit.js";
import type { ServerServices } from "./services.js";
import type { Tracing } from "./telemetry/tracing.js";
import { type CatalogEntry, catalogEntries, catalogEntry, type ToolDefinition } from "./tools/catalog.js";
import { ScenarioRuntimes } from "./tools/scenario-runtimes.js";
import type { Tool, ToolEnvironment } from "./tools/tool.js";
import { toWireError, type WireError } from "./wire-errors.js";

/*
 * The request pipeline: every request, whatever its transport (HTTP, stdio) and dialect (Decision Gate, standard
 * MCP), is served by `ToolRouter.serve`, in this order:
 *
 *   1. authenticate  the credentials the transport collected, once per transport request (`authenticate`, which
 *                    HTTP calls first to count `max_inflight` after authentication only). Every decision is
 *                    audited (`mcp_tool_authz`); a refusal also takes a rate-limit token for the peer, so that
 *                    guessing credentials is throttled.
 *   2. rate-limit    one token for the principal.
 *   3. authorize     the tool must exist, then be in `allowed_tools`, and an OAuth token must carry its scope
 *                    (`read_scope` for read-only tools, `write_scope` for the others). Unknown tools are refused
 *                    only after authentication (the reference refuses them first), so callers without credentials
 *                    learn nothing about which tools exist.
 *   4. visibility    `[server.tools]` and the tool's availability: a hidden tool is an unknown tool.
 *   5. argument size a tool's size class: `document` tools may use the whole body limit, others 64 KiB.
 *   6. decode        the arguments, by the tool's zod schema.
 *   7. run           the tool. Decoding and running are timed together as the tool's duration; an error that is
 *                    not a `DecisionGateError` is logged with its cause and answered as "internal error".
 *   8. observe       after the dialect encoded the answer: the `mcp_request` audit line, the request counter and
 *                    a debug log line; the audit lines are written before the transport sends the answer.
 *
 * With `[telemetry]` on, steps 1 to 7 of a `tools/call` run inside its trace span (src/server/telemetry), which
 * records how the call ended before step 8.
 *
 * `tools/list` stops after step 2 and answers the visible tools; `resources/list` and `resources/read` stop after
 * step 2 too (`resources/read` resolves its URI before step 1, as the reference does). A message the dialect or
 * the transport refused before it could be routed (unreadable, oversized, an unknown method) goes straight to
 * step 8, so it is audited and counted like any other. Transports only move bytes and credentials; dialects
 * only decode and encode envelopes.
 */

/** `[server.tools]`: which tools callers see and may call. */
export interface ToolVisibility {
  mode: "filter" | "passthrough";
  allowlist: readonly string[];
  denylist: readonly string[];
}

/** Limits applied to every call. */
export interface RouterLimits {
  rateLimiter: RateLimiter | null;
  maxBodyBytes: number;
}

const SMALL_ARGUMENT_BYTES = 65_536;

/** Who the credentials prove the caller to be, or why they prove nothing. */
export type Authentication = { auth: AuthContext } | { refusal: unknown };

/** One request as a transport hands it over: how it arrived, the caller's credentials and the correlation ids. */
export interface RequestInfo extends Omit<CallContext, "auth" | "action"> {
  credentials: Credentials;
  /** `authenticate(credentials)`, when the transport needed it before handing the request over. */
  authentication?: Authentication;
  /** The HTTP request's headers and an MCP message's JSON-RPC id as sent, read only by tracing. */
  headers?: IncomingHttpHeaders;
  jsonRpcId?: string | number;
}

/** What a message asks the router to do; `refused` when the dialect or transport could not take it. */
export type RouterCall =
  | { kind: "tools/list" }
  | { kind: "tools/call"; tool: string; args: JsonValue }
  | { kind: "resources/list" }
  | { kind: "resources/read"; params: JsonValue | undefined }
  | { kind: "refused"; error: unknown };

/** One message as a dialect decoded it. */
export interface Inbound {
  call: RouterCall;
  /** The method and tool as audit and metrics record them, as far as they could be read. */
  method: string | null;
  tool: string | null;
  requestBytes: number;
  /** Whether the request gets its `mcp_request` line, counter and log line (standard MCP: tool requests only). */
  recorded: boolean;
  /** Standard MCP: the request's `params._meta` (a caller's `traceparent`) and its JSON-RPC id, for tracing. */
  meta?: unknown;
  jsonRpcId?: string | number;
}

export type Outcome = { ok: true; value: unknown } | { ok: false; error: WireError };

/** A dialect's answer to an outcome, and its size for the audit (0 when the MCP SDK writes it). */
export interface Encoded<Answer> {
  answer: Answer;
  responseBytes: number;
}

/**
 * The one place that knows every tool and runs the pipeline above. Every dialect (Decision Gate `/rpc` and stdio,
 * standard MCP over HTTP and stdio) calls it, so all of them authorize, validate, answer and record identically.
 */
export class ToolRouter {
  private readonly environment: ToolEnvironment;
  private readonly observers: Observers;
  /** What `tools/list` answers and which tools may be called: fixed by configuration, so computed once. */
  private readonly listed: readonly ToolDefinition[];
  private readonly callable: ReadonlySet<string>;

  constructor(
    private readonly services: ServerServices,
    private readonly auth: AuthSettings,
    visibility: ToolVisibility,
    private readonly limits: RouterLimits,
    /** `[telemetry]`: null when off, so that an untraced call costs one comparison. */
    private readonly tracing: Tracing | null = null,
  ) {
    this.environment = { services, runtimes: new ScenarioRuntimes(services) };
    this.observers = { audit: services.audit, metrics: services.metrics, log: services.log, auth };
    const available = catalogEntries().filter((entry) => entry.tool.available?.(services) !== false);
    const { allowlist, denylist } = visibility;
    const passesLists = (name: string) =>
      !denylist.includes(name) && (allowlist.length === 0 || allowlist.includes(name));
    this.listed = available
      .filter((entry) => visibility.mode === "passthrough" || passesLists(entry.tool.name))
      .map((entry) => entry.definition);
    this.callable = new Set(available.map((entry) => entry.tool.name).filter(passesLists));
  }

  /** Whether `resources/list` and `resources/read` exist at all. */
  get resourcesEnabled(): boolean {
    return this.services.docs?.resources === true;
  }

  /** Step 1's check of the credentials, with no side effect: transports may run it before handing requests over. */
  async authenticate(credentials: Credentials): Promise<Authentication> {
    try {
      return { auth: await checkCredentials(this.auth, credentials) };
    } catch (refusal) {
      return { refusal };
    }
  }

  /**
   * Step 1 alone, for a transport that must refuse unauthenticated requests before any message is handled (MCP
   * over HTTP answers them 401): a refusal is audited and throttled, and thrown; an accepted request records
   * nothing here, since each message it carries goes through the whole pipeline. A `tools/call` of a known tool
   * whose scope an OAuth token lacks is refused here too (MCP answers it 403 `insufficient_scope`).
   */
  async admit(request: RequestInfo, action: string, tool: string | null = null): Promise<void> {
    const authentication = await this.authenticationOf(request);
    if ("refusal" in authentication) this.refuseUnauthenticated(request, action, authentication.refusal);
    const entry = tool === null ? undefined : catalogEntry(tool);
    if (entry !== undefined) this.authorizeOrAudit(request, entry, authentication.auth);
  }

  /** Runs the pipeline for one message; `encode` turns the outcome into the dialect's answer. */
  async serve<Answer>(
    request: RequestInfo,
    inbound: Inbound,
    encode: (outcome: Outcome) => Encoded<Answer>,
  ): Promise<Answer> {
    const { call } = inbound;
    const outcome =
      this.tracing === null || call.kind !== "tools/call"
        ? await this.settle(request, call)
        : await this.tracing.toolCall(
            {
              method: "tools/call",
              tool: call.tool,
              jsonRpcId: request.jsonRpcId ?? inbound.jsonRpcId ?? request.requestId,
              transport: request.transport,
              headers: request.headers,
              meta: inbound.meta,
            },
            () => this.settle(request, call),
          );
    const { answer, responseBytes } = encode(outcome);
    await this.observe(request, inbound, outcome, responseBytes);
    return answer;
  }

  /** Steps 1 to 7, and their outcome. */
  private async settle(request: RequestInfo, call: RouterCall): Promise<Outcome> {
    try {
      return { ok: true, value: await this.perform(request, call) };
    } catch (error) {
      return { ok: false, error: toWireError(error) };
    }
  }

  private async perform(request: RequestInfo, call: RouterCall): Promise<unknown> {
    switch (call.kind) {
      case "refused":
        throw call.error;
      case "tools/list":
        await this.authenticated(request, "tools/list");
        return this.listed;
      case "tools/call": {
        const context = await this.authenticated(request, call.tool);
        const tool = this.authorized(context);
        if (!this.callable.has(tool.name)) throw new MethodNotFoundError("unknown tool");
        this.checkArgumentSize(tool, call.args);
        return this.run(tool, call.args, context);
      }
      case "resources/list": {
        const docs = this.requireResources();
        await this.authenticated(request, "resources/list");
        return docs.catalog.resourcesList();
      }
      case "resources/read": {
        const contents = this.requireResources().catalog.resourcesRead(resourceUriParam(call.params));
        await this.authenticated(request, "resources/read");
        return contents;
      }
    }
  }

  /** Steps 1 and 2: the context tools receive. */
  private async authenticated(request: RequestInfo, action: string): Promise<CallContext> {
    const authentication = await this.authenticationOf(request);
    if ("refusal" in authentication) this.refuseUnauthenticated(request, action, authentication.refusal);
    const { auth } = authentication;
    this.auditAuthz(request, action, auth, null);
    this.limits.rateLimiter?.take(`principal:${auth.principalId}`);
    return {
      action,
      transport: request.transport,
      dialect: request.dialect,
      auth,
      peerIp: request.peerIp,
      requestId: request.requestId,
      clientCorrelationId: request.clientCorrelationId,
      serverCorrelationId: request.serverCorrelationId,
    };
  }

  private async authenticationOf(request: RequestInfo): Promise<Authentication> {
    return request.authentication ?? this.authenticate(request.credentials);
  }

  private refuseUnauthenticated(request: RequestInfo, action: string, error: unknown): never {
    this.auditAuthz(request, action, null, error);
    this.limits.rateLimiter?.take(`unauthenticated:${request.credentials.peerIp ?? request.credentials.transport}`);
    throw error;
  }

  /** Step 3: the tool, if it exists and `allowed_tools` and the caller's OAuth scopes admit it. */
  private authorized(context: CallContext): Tool {
    const entry = catalogEntry(context.action);
    if (entry === undefined) throw new MethodNotFoundError("unknown tool");
    this.authorizeOrAudit(context, entry, context.auth);
    return entry.tool;
  }

  /** A refusal of step 3 is audited. */
  private authorizeOrAudit(request: Omit<RequestInfo, "credentials">, entry: CatalogEntry, auth: AuthContext): void {
    try {
      authorizeTool(this.auth, { name: entry.tool.name, readOnly: entry.definition.annotations.readOnlyHint }, auth);
    } catch (error) {
      this.auditAuthz(request, entry.tool.name, auth, error);
      throw error;
    }
  }

  /** Step 5. */
  private checkArgumentSize(tool: Tool, args: JsonValue): void {
    const cap =
      tool.argumentSize === "document"
        ? this.limits.maxBodyBytes
        : Math.min(this.limits.maxBodyBytes, SMALL_ARGUMENT_BYTES);
    const size = canonicalBytes(args).length;
    if (size > cap)
      throw new LimitError("request_too_large", `arguments too large for ${tool.name} (${size} > ${cap} bytes)`);
  }

  /** Steps 6 and 7. */
  private run(tool: Tool, args: JsonValue, context: CallContext): Promise<unknown> {
    return this.services.metrics
      .timeTool(tool.name, async () =>
        tool.run(decode(tool.args, args, "arguments"), { context, rawArgs: args, ...this.environment }),
      )
      .catch((error: unknown) => {
        // Callers see only "internal error"; the operator gets the cause.
        if (!(error instanceof DecisionGateError)) {
          this.services.log.error(
            { err: error, tool: tool.name, server_correlation_id: context.serverCorrelationId },
            "tool call failed with an internal error",
          );
        }
        throw error;
      });
  }

  /** Step 8. */
  private observe(request: RequestInfo, inbound: Inbound, outcome: Outcome, responseBytes: number): Promise<void> {
    if (!inbound.recorded) return this.services.audit.flush();
    return observeRequest(this.observers, request, {
      method: inbound.method,
      tool: inbound.tool,
      error: outcome.ok ? null : outcome.error,
      requestBytes: inbound.requestBytes,
      responseBytes,
    });
  }

  /** `mcp_tool_authz`: every authentication and authorization decision, with the reason callers never see. */
  private auditAuthz(
    request: Omit<RequestInfo, "credentials">,
    action: string,
    auth: AuthContext | null,
    error: unknown,
  ): void {
    const wire = error === null ? null : toWireError(error);
    this.services.audit.toolAuthz({
      decision: wire === null ? "allow" : "deny",
      ...auditCorrelation(request),
      action,
      transport: request.transport,
      peer_ip: request.peerIp,
      auth_method: wire === null ? (auth?.method ?? null) : null,
      subject: auth?.subject ?? null,
      token_fingerprint: auth?.tokenFingerprint ?? null,
      reason: wire === null ? null : `${wire.kind}: ${wire.auditReason ?? wire.message}`,
    });
  }

  private requireResources() {
    const docs = this.services.docs;
    if (docs === null || !docs.resources) throw new MethodNotFoundError("method not found");
    return docs;
  }
}
