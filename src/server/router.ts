import { MethodNotFoundError } from "../core/errors.js";
import { decode } from "../core/wire/common.js";
import type { JsonValue } from "../json/value.js";
import { type AuthSettings, authenticate, authorizeTool, type Credentials } from "./auth.js";
import type { CallContext } from "./context.js";
import { resourceUriParam } from "./docs/catalog.js";
import { DocsSearchRequest, searchDocs } from "./docs/search.js";
import type { ServerServices } from "./services.js";
import { type ToolDefinition, toolDefinitions } from "./tools/catalog.js";
import { evidenceTools } from "./tools/evidence.js";
import { precheckTools } from "./tools/precheck.js";
import { runpackTools } from "./tools/runpack.js";
import { ScenarioRuntimes, scenarioTools } from "./tools/scenario.js";
import { schemaTools } from "./tools/schemas.js";
import type { ToolHandlers } from "./tools/types.js";

/** `[server.tools]`: which tools callers see and may call. */
export interface ToolVisibility {
  mode: "filter" | "passthrough";
  allowlist: readonly string[];
  denylist: readonly string[];
}

/** One request as a dialect hands it over: the caller's credentials and the correlation ids. */
export type RequestInfo = Omit<CallContext, "auth"> & { credentials: Credentials };

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
  ) {
    const runtimes = new ScenarioRuntimes(services);
    this.handlers = {
      ...scenarioTools(services, runtimes),
      ...evidenceTools(services),
      ...runpackTools(services, runtimes),
      ...schemaTools(services),
      ...precheckTools(services),
      decision_gate_docs_search: async (args) => this.searchDocs(args),
    };
    this.definitions = new Map(toolDefinitions().map((definition) => [definition.name, definition]));
  }

  /** `tools/list`: the tools this caller sees, in canonical order. */
  listTools(request: RequestInfo): ToolDefinition[] {
    this.contextOf(request);
    return toolDefinitions().filter((tool) => this.isListed(tool.name));
  }

  /** `tools/call`: unknown tool, authentication, `allowed_tools`, visibility, then the tool (interface §1.2). */
  async callTool(name: string, args: JsonValue, request: RequestInfo): Promise<unknown> {
    const handler = this.handlers[name];
    if (handler === undefined || !this.definitions.has(name)) throw new MethodNotFoundError("unknown tool");
    const context = this.contextOf(request);
    authorizeTool(this.auth, name);
    if (!this.isCallable(name)) throw new MethodNotFoundError("unknown tool");
    return handler(args, context);
  }

  /** Whether `resources/list` and `resources/read` exist at all. */
  get resourcesEnabled(): boolean {
    return this.services.docs?.resources === true;
  }

  resourcesList(request: RequestInfo): JsonValue {
    const docs = this.requireResources();
    this.contextOf(request);
    return docs.catalog.resourcesList();
  }

  /** The URI is checked before authentication, as in the reference. */
  resourcesRead(params: JsonValue | undefined, request: RequestInfo): JsonValue {
    const docs = this.requireResources();
    const contents = docs.catalog.resourcesRead(resourceUriParam(params));
    this.contextOf(request);
    return contents;
  }

  /** Authenticates the request; the result is the context every tool receives. */
  contextOf(request: RequestInfo): CallContext {
    const { credentials, ...rest } = request;
    return { ...rest, auth: authenticate(this.auth, credentials) };
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
