import { createHash } from "node:crypto";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfigText } from "../../src/config/load.js";
import { parseJson } from "../../src/json/parse.js";
import type { JsonObject, JsonValue } from "../../src/json/value.js";
import { compactJson } from "../../src/json/write.js";
import { ENV_KEY_GATE } from "../support/scenarios.js";
import { configDir, type ServerProcess, serveDirectory } from "../support/server-process.js";
import { startStdioSession } from "../support/stdio-session.js";

/*
 * `[telemetry]` against a real OTLP/HTTP receiver: the server process exports its spans to an HTTP server in this
 * test, which decodes the OTLP JSON payloads.
 */

const TOKEN = "planted-bearer-T0KEN-otel-1d2c";
const HEADER_SECRET = "planted-otlp-header-k3y-6e0b";
const EVIDENCE_SECRET = "planted-evidence-v4lue-93aa";
const PROBE = fileURLToPath(new URL("../support/module-probe/register.mjs", import.meta.url));

const INCOMING_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const INCOMING_SPAN = "00f067aa0ba902b7";
const META_TRACE = "0af7651916cd43dd8448eb211c80319c";
const META_SPAN = "b7ad6b7169203331";

interface ExportRequest {
  contentType: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: Array<{ key: string; value: Record<string, unknown> }>;
  status?: { code?: number };
}

/** A minimal OTLP/HTTP collector: records every export request and accepts it. */
async function startReceiver(): Promise<{ url: string; requests: ExportRequest[]; server: Server }> {
  const requests: ExportRequest[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const contentType = request.headers["content-type"] ?? "";
      requests.push({ contentType, headers: request.headers, body: Buffer.concat(chunks) });
      const json = contentType.startsWith("application/json");
      response.writeHead(200, { "content-type": json ? "application/json" : "application/x-protobuf" });
      response.end(json ? "{}" : Buffer.alloc(0));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/v1/traces`, requests, server };
}

function spansOf(requests: readonly ExportRequest[]): OtlpSpan[] {
  return requests.flatMap((request) => {
    const payload = JSON.parse(request.body.toString("utf8")) as {
      resourceSpans: Array<{ scopeSpans: Array<{ spans: OtlpSpan[] }> }>;
    };
    return payload.resourceSpans.flatMap((resource) => resource.scopeSpans.flatMap((scope) => scope.spans));
  });
}

function attribute(span: OtlpSpan, key: string): unknown {
  const value = span.attributes.find((entry) => entry.key === key)?.value;
  return value === undefined ? undefined : Object.values(value)[0];
}

const fingerprintOf = (token: string) => createHash("sha256").update(token).digest("hex");

function serverConfig(telemetry: string): string {
  return `
[server]
transport = "http"
bind = "127.0.0.1:0"
[server.auth]
mode = "bearer_token"
bearer_tokens = ["${TOKEN}"]
[[server.auth.principals]]
subject = "token:${fingerprintOf(TOKEN)}"
policy_class = "dev"
roles = [{ name = "TenantAdmin" }]
[[providers]]
name = "env"
type = "builtin"
config = { overrides = { DEPLOY_KEY = "${EVIDENCE_SECRET}" } }
${telemetry}
`;
}

/** Serves `config` with the module probe installed: the returned `loaded()` lists the OpenTelemetry modules resolved. */
async function serveProbed(
  config: string,
  env: NodeJS.ProcessEnv = {},
): Promise<{ server: ServerProcess; loaded(): string[] }> {
  const dir = configDir(config);
  const probeFile = join(dir, "otel-modules.txt");
  const server = await serveDirectory(dir, [], {
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --import ${PROBE}`.trim(),
    OTEL_PROBE_FILE: probeFile,
    OTEL_PROBE_PATTERN: "@opentelemetry/",
    ...env,
  });
  return {
    server,
    loaded: () => (existsSync(probeFile) ? readFileSync(probeFile, "utf8").split("\n").filter(Boolean) : []),
  };
}

function rpcCaller(server: ServerProcess) {
  return async (name: string, args: JsonValue, headers: Record<string, string> = {}) => {
    const response = await fetch(`${server.url}/rpc`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}`, ...headers },
      body: compactJson({ jsonrpc: "2.0", id: 7n, method: "tools/call", params: { name, arguments: args } }),
    });
    return parseJson(await response.text()) as JsonObject;
  };
}

const resultOf = (answer: JsonObject) =>
  ((answer.result as JsonObject).content as Array<{ json: JsonObject }>)[0]?.json as JsonObject;

/** define → start → next → export over `/rpc`, then one more decision over `/mcp`; the results of interest. */
async function driveRun(server: ServerProcess) {
  const call = rpcCaller(server);
  const run = { run_id: "r", tenant_id: 1n, namespace_id: 2n };
  expect((await call("scenario_define", { spec: ENV_KEY_GATE })).error).toBeUndefined();
  const started = await call("scenario_start", {
    scenario_id: "deploy",
    run_config: { ...run, scenario_id: "deploy", dispatch_targets: [], policy_tags: [] },
    started_at: { kind: "logical", value: 1n },
    issue_entry_packets: false,
  });
  expect(started.error).toBeUndefined();
  const next = resultOf(
    await call(
      "scenario_next",
      {
        scenario_id: "deploy",
        request: { ...run, trigger_id: "t", agent_id: "ci", time: { kind: "logical", value: 2n } },
        feedback: "evidence",
      },
      { traceparent: `00-${INCOMING_TRACE}-${INCOMING_SPAN}-01`, tracestate: "vendor=opaque" },
    ),
  );
  const exported = await call("runpack_export", {
    scenario_id: "deploy",
    ...run,
    output_dir: "deploy-run",
    generated_at: { kind: "logical", value: 9n },
    include_verification: false,
  });
  expect(exported.error).toBeUndefined();
  // A failing call: an unknown run.
  const failed = await call("scenario_next", {
    scenario_id: "deploy",
    request: { ...run, run_id: "missing", trigger_id: "t", agent_id: "ci", time: { kind: "logical", value: 3n } },
  });
  expect(failed.error).toBeDefined();

  // Standard MCP, with the caller's trace in `params._meta`.
  const mcp = await fetch(`${server.url}/mcp`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": "2025-06-18",
      authorization: `Bearer ${TOKEN}`,
    },
    body: compactJson({
      jsonrpc: "2.0",
      id: "mcp-42",
      method: "tools/call",
      params: {
        name: "scenario_status",
        arguments: { scenario_id: "deploy", request: { ...run, requested_at: { kind: "logical", value: 4 } } },
        _meta: { traceparent: `00-${META_TRACE}-${META_SPAN}-01` },
      },
    }),
  });
  expect(mcp.status).toBe(200);
  return { next, failedError: failed.error as JsonObject };
}

describe("[telemetry] configuration", () => {
  it("is off by default and names the field of a bad value", () => {
    const { config } = parseConfigText("");
    expect(config.telemetry).toEqual({
      otlp_protocol: "http/protobuf",
      otlp_headers: {},
      sample_ratio: 1,
      service_name: "decision-gate",
    });
    expect(() => parseConfigText('[telemetry]\notlp_endpoint = "ftp://collector/v1/traces"')).toThrow(
      /telemetry\.otlp_endpoint must be an http\(s\) URL/,
    );
    expect(() => parseConfigText('[telemetry]\notlp_endpoint = "http://c:4318"\nsample_ratio = 1.5')).toThrow(
      /telemetry\.sample_ratio must be between 0 and 1/,
    );
    expect(() => parseConfigText('[telemetry]\notlp_protocol = "grpc"')).toThrow(/otlp_protocol/);
  });
});

describe("OpenTelemetry traces", () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  beforeAll(async () => {
    receiver = await startReceiver();
  });
  afterAll(() => {
    receiver?.server.close();
  });

  it(
    "exports one span per tool call over OTLP/HTTP JSON, with evidence and commit children and no secrets",
    { timeout: 60_000 },
    async () => {
      receiver.requests.length = 0;
      const { server, loaded } = await serveProbed(
        serverConfig(`[telemetry]
otlp_endpoint = "${receiver.url}"
otlp_protocol = "http/json"
otlp_headers = { "x-api-key" = "${HEADER_SECRET}" }
sample_ratio = 1.0
service_name = "dg-under-test"`),
      );
      let stderr = "";
      try {
        const { next, failedError } = await driveRun(server);
        // Graceful shutdown flushes the batch processor.
        expect(await server.stop()).toBe(0);
        stderr = server.stderr();

        expect(loaded().length).toBeGreaterThan(0);
        expect(receiver.requests.length).toBeGreaterThan(0);
        for (const request of receiver.requests) {
          expect(request.contentType).toMatch(/^application\/json/);
          expect(request.headers["x-api-key"]).toBe(HEADER_SECRET);
        }
        const raw = receiver.requests.map((request) => request.body.toString("utf8")).join("\n");
        expect(raw).toContain('"dg-under-test"');
        for (const secret of [TOKEN, HEADER_SECRET, EVIDENCE_SECRET, fingerprintOf(TOKEN)]) {
          expect(raw).not.toContain(secret);
        }
        expect(stderr).not.toContain(HEADER_SECRET);

        const spans = spansOf(receiver.requests);
        const named = (name: string) => spans.filter((span) => span.name === name);
        for (const tool of ["scenario_define", "scenario_start", "runpack_export", "scenario_status"]) {
          expect(named(`tools/call ${tool}`)).toHaveLength(1);
        }
        const [nextSpan, failedSpan] = named("tools/call scenario_next");
        expect(named("tools/call scenario_next")).toHaveLength(2);
        if (nextSpan === undefined || failedSpan === undefined) throw new Error("scenario_next spans missing");

        // The tool span continues the caller's trace from `traceparent`.
        expect(nextSpan.traceId).toBe(INCOMING_TRACE);
        expect(nextSpan.parentSpanId).toBe(INCOMING_SPAN);
        expect(nextSpan.kind).toBe(2); // SERVER
        expect(attribute(nextSpan, "mcp.method.name")).toBe("tools/call");
        expect(attribute(nextSpan, "gen_ai.tool.name")).toBe("scenario_next");
        expect(attribute(nextSpan, "jsonrpc.request.id")).toBe("7");
        expect(attribute(nextSpan, "network.transport")).toBe("tcp");
        const decision = next.decision as JsonObject;
        expect(attribute(nextSpan, "decision_gate.decision.id")).toBe(decision.decision_id);
        expect(attribute(nextSpan, "decision_gate.decision.outcome")).toBe((decision.outcome as JsonObject).kind);
        expect(attribute(nextSpan, "decision_gate.receipt.hash")).toBe((next.action as JsonObject).receipt_sha256);
        expect(attribute(nextSpan, "decision_gate.receipt.hash")).toMatch(/^[0-9a-f]{64}$/);
        expect(nextSpan.status?.code ?? 0).not.toBe(2);

        // Evidence query and store commit are children of the tool span.
        const evidence = named("evidence_query").filter((span) => span.parentSpanId === nextSpan.spanId);
        expect(evidence).toHaveLength(1);
        expect(evidence[0]?.traceId).toBe(INCOMING_TRACE);
        expect(attribute(evidence[0] as OtlpSpan, "decision_gate.evidence.provider")).toBe("env");
        expect(attribute(evidence[0] as OtlpSpan, "decision_gate.evidence.check")).toBe("get");
        expect(attribute(evidence[0] as OtlpSpan, "decision_gate.evidence.lane")).toBe("verified");
        expect(attribute(evidence[0] as OtlpSpan, "decision_gate.evidence.outcome")).toBe("ok");
        const commits = named("run_state commit").filter((span) => span.parentSpanId === nextSpan.spanId);
        expect(commits).toHaveLength(1);
        const [startSpan] = named("tools/call scenario_start");
        expect(named("run_state create").map((span) => span.parentSpanId)).toEqual([startSpan?.spanId]);
        // A call without `traceparent` starts a trace of its own.
        expect(startSpan?.parentSpanId ?? "").toBe("");
        expect(startSpan?.traceId).not.toBe(INCOMING_TRACE);

        // A failed call: error status with the error's code and kind only.
        expect(failedSpan.status?.code).toBe(2); // ERROR
        expect(attribute(failedSpan, "error.type")).toBe((failedError.data as JsonObject).kind);
        expect(attribute(failedSpan, "rpc.response.status_code")).toBe(String(failedError.code));

        // Standard MCP: the trace from `params._meta`, the client's JSON-RPC id and the protocol version.
        const [statusSpan] = named("tools/call scenario_status");
        expect(statusSpan?.traceId).toBe(META_TRACE);
        expect(statusSpan?.parentSpanId).toBe(META_SPAN);
        expect(attribute(statusSpan as OtlpSpan, "jsonrpc.request.id")).toBe("mcp-42");
        expect(attribute(statusSpan as OtlpSpan, "mcp.protocol.version")).toBe("2025-06-18");
      } finally {
        await server.stop();
        rmSync(server.dir, { recursive: true, force: true });
      }
    },
  );

  it("honours `params._meta.traceparent` on MCP over stdio", { timeout: 60_000 }, async () => {
    receiver.requests.length = 0;
    const dir = configDir(`[server]
transport = "stdio"
[telemetry]
otlp_endpoint = "${receiver.url}"
otlp_protocol = "http/json"`);
    const session = startStdioSession(dir, "ndjson");
    try {
      session.write(
        `${JSON.stringify({
          jsonrpc: "2.0",
          id: 3,
          method: "tools/call",
          params: { name: "providers_list", arguments: {}, _meta: { traceparent: `00-${META_TRACE}-${META_SPAN}-01` } },
        })}\n`,
      );
      expect(await session.next()).toMatchObject({ id: 3n, result: { structuredContent: {} } });
      expect(await session.end()).toBe(0);
      const [span, ...others] = spansOf(receiver.requests);
      expect(others).toEqual([]);
      expect(span?.name).toBe("tools/call providers_list");
      expect(span?.traceId).toBe(META_TRACE);
      expect(span?.parentSpanId).toBe(META_SPAN);
      expect(attribute(span as OtlpSpan, "network.transport")).toBe("pipe");
      expect(attribute(span as OtlpSpan, "jsonrpc.request.id")).toBe("3");
    } finally {
      if (session.alive()) await session.end();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("exports OTLP/HTTP protobuf by default", { timeout: 60_000 }, async () => {
    receiver.requests.length = 0;
    const { server } = await serveProbed(serverConfig(`[telemetry]\notlp_endpoint = "${receiver.url}"`));
    try {
      const answer = await rpcCaller(server)("providers_list", {});
      expect(answer.error).toBeUndefined();
      expect(await server.stop()).toBe(0);
      expect(receiver.requests.length).toBeGreaterThan(0);
      for (const request of receiver.requests) {
        expect(request.contentType).toBe("application/x-protobuf");
        expect(request.body.length).toBeGreaterThan(0);
        // The span name is a protobuf string field: its bytes appear as they are.
        expect(request.body.includes(Buffer.from("tools/call providers_list"))).toBe(true);
        expect(request.body.includes(Buffer.from(TOKEN))).toBe(false);
      }
    } finally {
      await server.stop();
      rmSync(server.dir, { recursive: true, force: true });
    }
  });

  it("off by default: no export requests and the OpenTelemetry SDK is never loaded", { timeout: 60_000 }, async () => {
    receiver.requests.length = 0;
    // Even the SDK's own environment variables lead nowhere: nothing reads them.
    const { server, loaded } = await serveProbed(serverConfig(""), {
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: receiver.url,
    });
    try {
      await driveRun(server);
      expect(await server.stop()).toBe(0);
      expect(receiver.requests).toHaveLength(0);
      expect(loaded()).toEqual([]);
    } finally {
      await server.stop();
      rmSync(server.dir, { recursive: true, force: true });
    }
  });
});
