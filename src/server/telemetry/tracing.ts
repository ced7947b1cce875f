import type { IncomingHttpHeaders } from "node:http";
import type { EvidenceSource } from "../../core/run/evidence.js";
import type { RunStateStore } from "../../core/run/store.js";
import type { TransportName } from "../context.js";

/*
 * The server's view of tracing (`[telemetry]`). Nothing here loads OpenTelemetry: `loadTracing` (./load.ts) imports
 * the SDK (./otel.ts) only when an endpoint is configured, and otherwise returns null, which the router and the
 * services check once per call instead of calling a tracer. The core, evidence and store layers never see OpenTelemetry:
 * the server wraps the evidence source and the run-state store it hands them (`evidence`, `store`).
 */

/** One tool call, as the router knows it before running it. */
export interface ToolCallSpan {
  /** `tools/call`. */
  method: string;
  tool: string;
  /** The JSON-RPC id as the caller sent it, or its JSON text. */
  jsonRpcId: string | number | null;
  transport: TransportName;
  /** HTTP request headers (`traceparent`, `tracestate`, `mcp-protocol-version`), when the call came over HTTP. */
  headers: IncomingHttpHeaders | undefined;
  /** The MCP request's `params._meta`, whose `traceparent`/`tracestate` take precedence over the headers'. */
  meta: unknown;
}

/** How a call ended: its result, or the wire error's code and kind (never its message or any payload). */
export type CallEnding = { ok: true; value: unknown } | { ok: false; error: { code: number; kind: string } };

export interface Tracing {
  /** Runs `call` inside the tool call's span, the parent of every evidence and store span it causes. */
  toolCall<T extends CallEnding>(span: ToolCallSpan, call: () => Promise<T>): Promise<T>;
  /** An evidence source whose queries are child spans of the current tool call. */
  evidence(source: EvidenceSource): EvidenceSource;
  /** A run-state store whose creates and commits are child spans of the current tool call. */
  store(store: RunStateStore): RunStateStore;
  /** Exports the spans still buffered, then stops. */
  shutdown(): Promise<void>;
}
