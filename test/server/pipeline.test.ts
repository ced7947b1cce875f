import { afterAll, describe, expect, it } from "vitest";
import { parseJson } from "../../src/json/parse.js";
import type { JsonObject } from "../../src/json/value.js";
import { type ServerProcess, startServerProcess } from "../support/server-process.js";

/*
 * The request pipeline (src/server/router.ts) records every request with the error it was answered with, in both
 * dialects. Standard MCP answers a failed `tools/list` with a protocol error; its audit line and counter must carry
 * the router's error, not the protocol error object's.
 */

const servers: ServerProcess[] = [];
afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()));
});

function mcpToolsList(server: ServerProcess, id: number) {
  return fetch(`${server.url}/mcp`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
    body: JSON.stringify({ jsonrpc: "2.0", id, method: "tools/list" }),
  });
}

async function mcpRequestLines(server: ServerProcess, count: number): Promise<JsonObject[]> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const lines = server
      .stderr()
      .split("\n")
      .filter((line) => line.startsWith('{"event":"mcp_request"'))
      .map((line) => parseJson(line) as JsonObject);
    if (lines.length >= count) return lines;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`expected ${count} mcp_request lines:\n${server.stderr()}`);
}

describe("the request pipeline", () => {
  it("audits and counts a refused MCP tools/list with the router's error (rate_limited, not internal)", async () => {
    const server = await startServerProcess(
      '[server]\ntransport = "http"\nbind = "127.0.0.1:0"\n' +
        "[server.limits.rate_limit]\nmax_requests = 1\nwindow_ms = 60000\n",
    );
    servers.push(server);
    expect(
      ((await (await mcpToolsList(server, 1)).json()) as { result: { tools: unknown[] } }).result.tools,
    ).not.toEqual([]);
    const limited = (await (await mcpToolsList(server, 2)).json()) as { error: { code: number; data: unknown } };
    expect(limited.error).toMatchObject({ code: -32071, data: { kind: "rate_limited", retryable: true } });
    const [ok, refused] = await mcpRequestLines(server, 2);
    expect(ok).toMatchObject({ method: "ToolsList", outcome: "Ok", error_code: null });
    expect(refused).toMatchObject({
      method: "ToolsList",
      outcome: "Error",
      error_code: -32071n,
      error_kind: "rate_limited",
    });
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(
      /decision_gate_requests_total\{dialect="mcp",method="tools\/list",tool="",outcome="error",code="-32071"\} 1/,
    );
  });
});
