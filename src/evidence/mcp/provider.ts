import type { EvidenceResult } from "../../core/run/schema.js";
import type { EvidenceQuery } from "../../core/spec/schema.js";
import type { EvidenceContext, EvidenceProvider } from "../provider.js";
import { type McpProviderSettings, transportKind } from "./config.js";
import { sanitizeCorrelationId } from "./correlation.js";
import { HttpTransport } from "./http-transport.js";
import {
  decodeToolResult,
  evidenceQueryCall,
  failure,
  isTransientFailure,
  McpProviderFailure,
  type McpTransport,
  type RpcCall,
  resultOf,
} from "./protocol.js";
import { StdioTransport } from "./stdio-transport.js";

/** No single wait between attempts is longer than this. */
const MAX_BACKOFF_MS = 30_000;

/**
 * An external evidence provider that is an MCP server (evidence §2), over stdio when `command` is set, else HTTP.
 * Transient failures (lost connections, dead processes, timeouts, HTTP 429/502/503/504) are retried up to
 * `max_retries` times (default 0, as the reference) with exponential backoff; the provider's own errors and
 * malformed answers are not.
 */
export function createMcpProvider(providerId: string, settings: McpProviderSettings): EvidenceProvider {
  return new McpEvidenceProvider(providerId, settings, createTransport(settings));
}

function createTransport(settings: McpProviderSettings): McpTransport {
  const { protocol, timeouts } = settings;
  if (transportKind(settings) === "stdio") {
    return new StdioTransport({
      command: settings.command,
      protocol,
      requestTimeoutMs: settings.stdio_request_timeout_ms,
    });
  }
  // Checked again here, as the reference does, for settings that did not come through the config schema.
  if (settings.url === null) throw failure("mcp url missing");
  if (settings.url.startsWith("http://") && !settings.allow_insecure_http) {
    throw failure("insecure http disabled for provider");
  }
  // Node's global fetch has no connect-phase hook, so the request timeout bounds the whole exchange, connect
  // included (request_timeout_ms >= connect_timeout_ms); a stalled connect fails as "http request timed out".
  return new HttpTransport({
    url: settings.url,
    protocol,
    bearerToken: settings.auth.bearer_token,
    requestTimeoutMs: timeouts.request_timeout_ms,
    followRedirects: settings.follow_redirects,
  });
}

class McpEvidenceProvider implements EvidenceProvider {
  /** JSON-RPC ids for calls without a correlation id; per client, starting at 1. */
  private nextId = 1n;

  constructor(
    readonly providerId: string,
    private readonly settings: McpProviderSettings,
    private readonly transport: McpTransport,
  ) {}

  async query(query: EvidenceQuery, context: EvidenceContext): Promise<EvidenceResult> {
    const correlationId = sanitizeCorrelationId(context.correlation_id);
    const call = evidenceQueryCall(correlationId ?? this.nextId++, correlationId, query, context);
    try {
      return await this.withRetries(() => this.attempt(call));
    } catch (error) {
      throw withoutSecret(error, this.settings.auth.bearer_token);
    }
  }

  close(): Promise<void> {
    return this.transport.close();
  }

  private async attempt(call: RpcCall): Promise<EvidenceResult> {
    const response = await this.transport.request(call);
    const { protocol } = this.settings;
    // The reference does not check the response id of its own protocol; standard MCP servers must match it.
    return decodeToolResult(resultOf(response, protocol === "mcp" ? call.id : undefined), protocol);
  }

  private async withRetries<T>(operation: () => Promise<T>): Promise<T> {
    const { max_retries: maxRetries, retry_backoff_ms: backoffMs } = this.settings;
    for (let attempt = 0; ; attempt++) {
      try {
        return await operation();
      } catch (error) {
        if (attempt >= maxRetries || !isTransientFailure(error)) throw error;
        await sleep(Math.min(backoffMs * 2 ** attempt, MAX_BACKOFF_MS));
      }
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Provider-supplied messages are passed on verbatim, except that a provider echoing the bearer token is masked. */
function withoutSecret(error: unknown, secret: string | null): unknown {
  if (secret === null || !(error instanceof McpProviderFailure) || !error.reason.includes(secret)) return error;
  return new McpProviderFailure(error.reason.replaceAll(secret, "[redacted]"), { transient: error.transient });
}
