import { DecisionGateError, LimitError, MethodNotFoundError } from "../core/errors.js";
import { decode } from "../core/wire/common.js";
import type { JsonValue } from "../json/value.js";
import { canonicalBytes } from "../json/write.js";
import { auditCorrelation } from "./audit.js";
import { type AuthSettings, authenticate, authorizeTool, type Credentials } from "./auth.js";
import type { CallContext } from "./context.js";
import { resourceUriParam } from "./docs/catalog.js";
import { DocsSearchRequest, searchDocs } from "./docs/search.js";
import type { RateLimiter } from "./rate-limit.js";
import type { ServerServices } from "./services.js";
import { actionTools } from "./tools/actions.js";
import { type ToolDefinition, toolDefinitions } from "./tools/catalog.js";
import { evidenceTools } from "./tools/evidence.js";
import { precheckTools } from "./tools/precheck.js";
import { runpackTools } from "./tools/runpack.js";
import { ScenarioRuntimes, scenarioTools } from "./tools/scenario.js";
import { schemaTools } from "./tools/schemas.js";
import type { ToolHandlers } from "./tools/types.js";
import { toWireError } from "./wire-errors.js";

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

/** Tools whose arguments carry documents (specs, schemas, payloads); others take small argument objects. */
const LARGE_ARGUMENT_TOOLS = new Set([
  "scenario_define",
  "scenario_submit",
  "scenario_trigger",
  "schemas_register",
  "precheck",
]);
const SMALL_ARGUMENT_BYTES = 65_536;

/** One request as a dialect hands it over: the caller's credentials and the correlation ids. */
export type RequestInfo = Omit<CallContext, "auth" | "action"> & { credentials: Credentials };

/**
 * The one place that knows every tool. Every dialect (Decision Gate `/rpc` and stdio, standard MCP over HTTP and
 * stdio) calls it, so all of them authorize, validate and answer identically.
 */
export class ToolRouter {
  private readonly handlers: ToolHandlers;
  private readonly definitions: ReadonlyMap<string, ToolDefinition>;

  constructor(
    private readonly services: ServerServices,
    private readonly auth: AuthSettings,
    private readonly visibility: ToolVisibility,
    private readonly limits: RouterLimits,
  ) {
    const runtimes = new ScenarioRuntimes(services);
    this.handlers = {
      ...scenarioTools(services, runtimes),
      ...evidenceTools(services),
      ...runpackTools(services, runtimes),
      ...schemaTools(services),
      ...precheckTools(services),
      ...actionTools(),
      decision_gate_docs_search: async (args) => this.searchDocs(args),
    };
    this.definitions = new Map(toolDefinitions().map((definition) => [definition.name, definition]));
  }

  /** `tools/list`: the tools this caller sees, in canonical order. */
  listTools(request: RequestInfo): ToolDefinition[] {
    this.contextOf(request, "tools/list");
    return toolDefinitions().filter((tool) => this.isListed(tool.name));
  }

  /**
   * `tools/call`: authentication and rate limit, unknown tool, `allowed_tools`, visibility, the argument size
   * cap, then the tool. The reference checks for an unknown tool first (interface §1.2), which tells callers
   * without credentials which tools exist; here they get the same refusal whatever they name.
   */
  async callTool(name: string, args: JsonValue, request: RequestInfo): Promise<unknown> {
    const context = this.contextOf(request, name);
    const handler = this.handlers[name];
    if (handler === undefined || !this.definitions.has(name)) throw new MethodNotFoundError("unknown tool");
    this.audited(context, () => authorizeTool(this.auth, name));
    if (!this.isCallable(name)) throw new MethodNotFoundError("unknown tool");
    this.checkArgumentSize(name, args);
    return this.services.metrics
      .timeTool(name, () => handler(args, context))
      .catch((error: unknown) => {
        if (!(error instanceof DecisionGateError)) this.logInternalError(error, name, context);
        throw error;
      });
  }

  /** Callers see only "internal error"; the operator gets the cause. */
  private logInternalError(error: unknown, tool: string, context: CallContext): void {
    this.services.log.error(
      { err: error, tool, server_correlation_id: context.serverCorrelationId },
      "tool call failed with an internal error",
    );
  }

  /** Whether `resources/list` and `resources/read` exist at all. */
  get resourcesEnabled(): boolean {
    return this.services.docs?.resources === true;
  }

  resourcesList(request: RequestInfo): JsonValue {
    const docs = this.requireResources();
    this.contextOf(request, "resources/list");
    return docs.catalog.resourcesList();
  }

  /** The URI is checked before authentication, as in the reference. */
  resourcesRead(params: JsonValue | undefined, request: RequestInfo): JsonValue {
    const docs = this.requireResources();
    const contents = docs.catalog.resourcesRead(resourceUriParam(params));
    this.contextOf(request, "resources/read");
    return contents;
  }

  /**
   * Authenticates the request and takes a rate-limit token: the principal's, or (when authentication fails) the
   * peer address's, so that guessing credentials is throttled too. The result is the context tools receive.
   */
  contextOf(request: RequestInfo, action: string): CallContext {
    const { credentials, ...rest } = request;
    let auth: CallContext["auth"];
    try {
      auth = authenticate(this.auth, credentials);
    } catch (error) {
      this.refuseUnauthenticated(request, action, error);
    }
    const context = { ...rest, action, auth };
    this.auditAuthz(request, action, auth, null);
    this.limits.rateLimiter?.take(`principal:${auth.principalId}`);
    return context;
  }

  /**
   * Refuses, before any message is handled, a request whose credentials do not authenticate, so that an HTTP
   * transport can answer 401. A refusal is audited and throttled as in `contextOf`; an accepted request records
   * nothing here, since each message it carries is authenticated again when it is handled.
   */
  admit(request: RequestInfo, action: string): void {
    try {
      authenticate(this.auth, request.credentials);
    } catch (error) {
      this.refuseUnauthenticated(request, action, error);
    }
  }

  private refuseUnauthenticated(request: RequestInfo, action: string, error: unknown): never {
    this.auditAuthz(request, action, null, error);
    this.limits.rateLimiter?.take(`unauthenticated:${request.credentials.peerIp ?? request.credentials.transport}`);
    throw error;
  }

  /** Runs an authorization step, auditing a refusal. */
  private audited(context: CallContext, step: () => void): void {
    try {
      step();
    } catch (error) {
      this.auditAuthz(context, context.action, context.auth, error);
      throw error;
    }
  }

  /** `mcp_tool_authz`: every authentication and authorization decision, with the reason callers never see. */
  private auditAuthz(
    request: Omit<RequestInfo, "credentials">,
    action: string,
    auth: CallContext["auth"] | null,
    error: unknown,
  ) {
    const wire = error === null ? null : toWireError(error);
    this.services.audit.toolAuthz({
      ...auditCorrelation(request),
      decision: wire === null ? "allow" : "deny",
      action,
      transport: request.transport,
      peer_ip: request.peerIp,
      auth_method: wire === null ? (auth?.method ?? null) : null,
      subject: auth?.subject ?? null,
      token_fingerprint: auth?.tokenFingerprint ?? null,
      reason: wire === null ? null : `${wire.kind}: ${wire.auditReason ?? wire.message}`,
    });
  }

  private checkArgumentSize(name: string, args: JsonValue): void {
    const cap = LARGE_ARGUMENT_TOOLS.has(name)
      ? this.limits.maxBodyBytes
      : Math.min(this.limits.maxBodyBytes, SMALL_ARGUMENT_BYTES);
    const size = canonicalBytes(args).length;
    if (size > cap)
      throw new LimitError("request_too_large", `arguments too large for ${name} (${size} > ${cap} bytes)`);
  }

  private requireResources() {
    const docs = this.services.docs;
    if (docs === null || !docs.resources) throw new MethodNotFoundError("method not found");
    return docs;
  }

  private searchDocs(args: JsonValue) {
    const docs = this.services.docs;
    if (docs === null) throw new MethodNotFoundError("unknown tool");
    return searchDocs(docs.catalog, decode(DocsSearchRequest, args, "arguments"), docs.maxSections);
  }

  private docsSearchAvailable(): boolean {
    return this.services.docs?.search === true;
  }

  private isListed(name: string): boolean {
    if (name === "decision_gate_docs_search" && !this.docsSearchAvailable()) return false;
    return this.visibility.mode === "passthrough" || this.passesLists(name);
  }

  private isCallable(name: string): boolean {
    if (name === "decision_gate_docs_search" && !this.docsSearchAvailable()) return false;
    return this.passesLists(name);
  }

  private passesLists(name: string): boolean {
    const { allowlist, denylist } = this.visibility;
    return !denylist.includes(name) && (allowlist.length === 0 || allowlist.includes(name));
  }
}
