import {
  type Attributes,
  type Context,
  context,
  defaultTextMapGetter,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
} from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BatchSpanProcessor,
  NodeTracerProvider,
  ParentBasedSampler,
  type SpanExporter,
  TraceIdRatioBasedSampler,
} from "@opentelemetry/sdk-trace-node";
import type { TelemetryConfig } from "../../config/schema.js";
import type { EvidenceSource } from "../../core/run/evidence.js";
import type { RunStateStore } from "../../core/run/store.js";
import type { CallEnding, ToolCallSpan, Tracing } from "./tracing.js";

/*
 * OpenTelemetry tracing, loaded only when `[telemetry] otlp_endpoint` is set. Spans follow the MCP semantic
 * conventions for the tool call (`{mcp.method.name} {gen_ai.tool.name}`); evidence queries and store writes are
 * its children. Attributes name things (tools, providers, checks, decision ids, hashes), never values: no
 * evidence, arguments, results or credentials reach a span.
 */

const TRACER_NAME = "decision-gate";
const propagator = new W3CTraceContextPropagator();

export async function createOtelTracing(config: TelemetryConfig & { otlp_endpoint: string }): Promise<Tracing> {
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ "service.name": config.service_name }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.sample_ratio) }),
    spanProcessors: [new BatchSpanProcessor(await exporterOf(config))],
  });
  // Registers the async-local context manager, through which the evidence and store spans find their tool call.
  provider.register();
  return new OtelTracing(provider.getTracer(TRACER_NAME), () => provider.shutdown());
}

/** The exporter for the configured protocol; only that exporter's package is loaded. */
async function exporterOf(config: TelemetryConfig & { otlp_endpoint: string }): Promise<SpanExporter> {
  const options = { url: config.otlp_endpoint, headers: { ...config.otlp_headers } };
  if (config.otlp_protocol === "http/json") {
    const { OTLPTraceExporter } = await import("@opentelemetry/exporter-trace-otlp-http");
    return new OTLPTraceExporter(options);
  }
  const { OTLPTraceExporter } = await import("@opentelemetry/exporter-trace-otlp-proto");
  return new OTLPTraceExporter(options);
}

class OtelTracing implements Tracing {
  constructor(
    private readonly tracer: Tracer,
    readonly shutdown: () => Promise<void>,
  ) {}

  toolCall<T extends CallEnding>(call: ToolCallSpan, run: () => Promise<T>): Promise<T> {
    const options = { kind: SpanKind.SERVER, attributes: toolAttributes(call) };
    return this.tracer.startActiveSpan(`${call.method} ${call.tool}`, options, parentOf(call), async (span) => {
      try {
        const ending = await run();
        if (ending.ok) span.setAttributes(decisionAttributes(ending.value));
        else failed(span, ending.error.kind, String(ending.error.code));
        return ending;
      } finally {
        span.end();
      }
    });
  }

  evidence(source: EvidenceSource): EvidenceSource {
    return {
      query: (query, evidenceContext) => {
        const attributes = {
          "decision_gate.evidence.provider": query.provider_id,
          "decision_gate.evidence.check": query.check_id,
        };
        return this.child("evidence_query", attributes, async (span) => {
          const result = await source.query(query, evidenceContext);
          span.setAttributes({
            "decision_gate.evidence.lane": result.lane,
            "decision_gate.evidence.outcome": result.error === null ? "ok" : "error",
          });
          if (result.error !== null) span.setAttribute("decision_gate.evidence.error_code", result.error.code);
          return result;
        });
      },
      validateProviders: (spec) => source.validateProviders(spec),
    };
  }

  store(store: RunStateStore): RunStateStore {
    const write = <R>(operation: string, work: () => Promise<R>) =>
      this.child(`run_state ${operation}`, { "decision_gate.store.operation": operation }, work);
    return {
      create: (state, receipts) => write("create", () => store.create(state, receipts)),
      commit: (key, version, change) => write("commit", () => store.commit(key, version, change)),
      open: (key, lookahead) => store.open(key, lookahead),
      exclusive: (key, work) => store.exclusive(key, work),
      load: (key) => store.load(key),
      loadReceipts: (key) => store.loadReceipts(key),
      ready: () => store.ready(),
    };
  }

  /** A span under the current one; a thrown failure marks it with the error's class name only. */
  private child<R>(name: string, attributes: Attributes, work: (span: Span) => Promise<R>): Promise<R> {
    return this.tracer.startActiveSpan(name, { kind: SpanKind.INTERNAL, attributes }, async (span) => {
      try {
        return await work(span);
      } catch (error) {
        failed(span, error instanceof Error ? error.name : "error", null);
        throw error;
      } finally {
        span.end();
      }
    });
  }
}

function toolAttributes(call: ToolCallSpan): Attributes {
  const attributes: Attributes = {
    "mcp.method.name": call.method,
    "gen_ai.tool.name": call.tool,
    "gen_ai.operation.name": "execute_tool",
    "network.transport": call.transport === "stdio" ? "pipe" : "tcp",
  };
  if (call.jsonRpcId !== null) attributes["jsonrpc.request.id"] = String(call.jsonRpcId);
  const version = call.headers?.["mcp-protocol-version"];
  if (typeof version === "string") attributes["mcp.protocol.version"] = version;
  return attributes;
}

/** The decision a `scenario_next` or `scenario_trigger` result records, and its action receipt's hash. */
function decisionAttributes(value: unknown): Attributes {
  const result = value as { decision?: { decision_id?: unknown; outcome?: { kind?: unknown } }; action?: unknown };
  const attributes: Attributes = {};
  const decision = result?.decision;
  if (typeof decision?.decision_id === "string") attributes["decision_gate.decision.id"] = decision.decision_id;
  if (typeof decision?.outcome?.kind === "string") attributes["decision_gate.decision.outcome"] = decision.outcome.kind;
  const receipt = (result?.action as { receipt_sha256?: unknown } | undefined)?.receipt_sha256;
  if (typeof receipt === "string") attributes["decision_gate.receipt.hash"] = receipt;
  return attributes;
}

function failed(span: Span, kind: string, code: string | null): void {
  span.setStatus({ code: SpanStatusCode.ERROR });
  span.setAttribute("error.type", kind);
  if (code !== null) span.setAttribute("rpc.response.status_code", code);
}

/** The caller's trace: `params._meta` first, then the HTTP headers; a new trace when neither carries one. */
function parentOf(call: ToolCallSpan): Context {
  const meta = call.meta as { traceparent?: unknown } | null | undefined;
  const carrier = typeof meta?.traceparent === "string" ? meta : call.headers;
  return carrier === undefined ? context.active() : propagator.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter);
}
