import { rmSync } from "node:fs";
import { request } from "node:http";
import { connect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMcpClient } from "../../src/cli/client.js";
import { parseConfigText } from "../../src/config/load.js";
import { parseJson } from "../../src/json/parse.js";
import type { JsonObject, JsonValue } from "../../src/json/value.js";
import { compactJson } from "../../src/json/write.js";
import { RequestGuard } from "../../src/server/request-guard.js";
import { RELEASE_GATE } from "../support/scenarios.js";
import { configDir, runCli, type ServerProcess, startServerProcess } from "../support/server-process.js";

/*
 * Attacks on the HTTP transport, each against a real server: cross-site requests and DNS rebinding (D17), slow
 * requests that held every slot, JSON-RPC batches on /mcp, and /metrics on the public bind.
 */

const servers: ServerProcess[] = [];
afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()));
});

async function serve(config: string, args: string[] = []): Promise<ServerProcess> {
  const server = await startServerProcess(config, args);
  servers.push(server);
  return server;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** One HTTP request with exactly these headers (`host` included, which `fetch` would not let a test choose). */
function send(
  url: string,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string },
) {
  return new Promise<Answer>((resolve, reject) => {
    const outgoing = request(
      new URL(path, url),
      { method: options.method ?? "POST", headers: options.headers ?? {}, agent: false },
      (response) => {
        let text = "";
        response.on("data", (chunk) => {
          text += chunk;
        });
        response.on("end", () => resolve({ status: response.statusCode ?? 0, headers: response.headers, text }));
      },
    );
    outgoing.on("error", reject);
    outgoing.end(options.body);
  });
}

const JSON_BODY = { "content-type": "application/json" };
const MCP_ACCEPT = { accept: "application/json, text/event-stream" };
const toolCall = (name: string, args: JsonValue, id: JsonValue = 1n) =>
  compactJson({ jsonrpc: "2.0", id, method: "tools/call", params: { name, arguments: args } });
const LIST = toolCall("providers_list", {});
const DEFINE = toolCall("scenario_define", { spec: parseJson(RELEASE_GATE) });
const LIST_SCENARIOS = toolCall("scenarios_list", { tenant_id: 1n, namespace_id: 2n });

function errorOf(answer: Answer) {
  return (parseJson(answer.text.replace(/^data: /, "")) as JsonObject).error as
    | { code: bigint; message: string; data: JsonObject }
    | undefined;
}

const resultOf = (answer: Answer) =>
  ((((parseJson(answer.text) as JsonObject).result as JsonObject).content as JsonObject[])[0] as JsonObject)
    .json as JsonObject;

const portOf = (server: ServerProcess) => new URL(server.url).port;

describe("cross-site requests and DNS rebinding (D17)", () => {
  const localOnly = `
[server]
transport = "http"
bind = "127.0.0.1:0"
[namespace]
allow_default = true
default_tenants = [1]
[[providers]]
name = "time"
type = "builtin"
`;

  let server: ServerProcess;
  beforeAll(async () => {
    server = await serve(localOnly);
  });

  it("refuses a page's simple cross-site POST before any tool runs, and audits the refusal", async () => {
    // What `fetch(url, {method: "POST", mode: "no-cors", body})` sends from https://evil.example: no preflight.
    const attack = await send(server.url, "/rpc", {
      headers: { "content-type": "text/plain;charset=UTF-8", origin: "https://evil.example" },
      body: DEFINE,
    });
    expect(attack.status).toBe(403);
    expect(errorOf(attack)).toMatchObject({ code: -32003n, data: { kind: "unauthorized", request_id: null } });
    // Without the Origin header (older browsers, some redirects), the content type alone refuses it.
    for (const type of ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain"]) {
      for (const path of ["/rpc", "/mcp"]) {
        const simple = await send(server.url, path, { headers: { "content-type": type, ...MCP_ACCEPT }, body: DEFINE });
        expect(simple.status, `${type} on ${path}`).toBe(415);
        expect(errorOf(simple), `${type} on ${path}`).toMatchObject({
          code: -32600n,
          data: { kind: "invalid_request", request_id: null },
        });
      }
    }
    // A Blob without a type is sent with no content-type at all.
    expect((await send(server.url, "/rpc", { body: DEFINE })).status).toBe(415);

    const listed = await send(server.url, "/rpc", { headers: JSON_BODY, body: LIST_SCENARIOS });
    expect(resultOf(listed).items).toEqual([]);
    expect(server.stderr()).toMatch(/"event":"mcp_request".*"error_code":-32003,"error_kind":"unauthorized"/);
    expect(server.stderr()).toMatch(/"event":"mcp_request".*"error_code":-32600,"error_kind":"invalid_request"/);
    expect(server.stderr()).not.toMatch(/"action":"scenario_define"/);

    // Positive control: JSON, with or without parameters, defines the scenario.
    const defined = await send(server.url, "/rpc", {
      headers: { "content-type": "Application/JSON; charset=utf-8" },
      body: DEFINE,
    });
    expect(defined.status).toBe(200);
    const after = await send(server.url, "/rpc", { headers: JSON_BODY, body: LIST_SCENARIOS });
    expect((resultOf(after).items as JsonObject[]).map((item) => item.scenario_id)).toEqual(["release-gate"]);
  });

  it("refuses a foreign Origin (403) but serves clients without one and the server's own origin", async () => {
    for (const path of ["/rpc", "/mcp"]) {
      for (const origin of ["https://evil.example", "null", `http://localhost:${Number(portOf(server)) + 1}`]) {
        const refused = await send(server.url, path, { headers: { ...JSON_BODY, ...MCP_ACCEPT, origin }, body: LIST });
        expect(refused.status, `${origin} on ${path}`).toBe(403);
        expect(errorOf(refused), `${origin} on ${path}`).toMatchObject({
          code: -32003n,
          message: "origin not allowed",
          data: { kind: "unauthorized", retryable: false },
        });
      }
    }
    expect(server.stderr()).not.toMatch(/"action":"providers_list"/);

    const ownOrigin = await send(server.url, "/rpc", {
      headers: { ...JSON_BODY, origin: `http://127.0.0.1:${portOf(server)}` },
      body: LIST,
    });
    expect(ownOrigin.status).toBe(200);
    // The project's own client (the reference SDKs' wire: JSON, no Origin) and a standard MCP client.
    for (const [transport, path] of [
      ["http", "/rpc"],
      ["mcp-http", "/mcp"],
    ] as const) {
      const client = createMcpClient({ transport, endpoint: `${server.url}${path}` });
      try {
        expect(await client.callTool("providers_list", {})).toHaveProperty("providers");
      } finally {
        await client.close();
      }
    }
  });

  it("refuses a rebinding Host on a loopback bind (421) and serves loopback names", async () => {
    const port = portOf(server);
    for (const host of [
      `attacker.example:${port}`,
      "attacker.example",
      `127.0.0.1.nip.io:${port}`,
      "evil.localhost.com",
    ]) {
      for (const path of ["/rpc", "/mcp", "/metrics"]) {
        // The browser sends the page's own origin along: same-origin for it, so only the Host gives it away.
        const origin = `http://${host}`;
        const refused = await send(server.url, path, {
          method: path === "/metrics" ? "GET" : "POST",
          headers: { ...JSON_BODY, ...MCP_ACCEPT, host, origin },
          body: path === "/metrics" ? undefined : LIST,
        });
        expect(refused.status, `${host} on ${path}`).toBe(421);
        expect(errorOf(refused)?.message).toBe("host not allowed");
      }
    }
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, `app.localhost:${port}`, "127.1"]) {
      const served = await send(server.url, "/rpc", { headers: { ...JSON_BODY, host }, body: LIST });
      expect(served.status, host).toBe(200);
    }
  });

  it("admits the origins and host names configured in allowed_origins and allowed_hosts", async () => {
    const configured = await serve(
      localOnly.replace(
        'bind = "127.0.0.1:0"',
        'bind = "127.0.0.1:0"\nallowed_origins = ["https://app.example.com"]\nallowed_hosts = ["gate.internal"]',
      ),
    );
    const port = portOf(configured);
    const allowed = await send(configured.url, "/rpc", {
      headers: { ...JSON_BODY, host: `gate.internal:${port}`, origin: "https://app.example.com" },
      body: LIST,
    });
    expect(allowed.status).toBe(200);
    const otherOrigin = await send(configured.url, "/rpc", {
      headers: { ...JSON_BODY, origin: "https://other.example.com" },
      body: LIST,
    });
    expect(otherOrigin.status).toBe(403);
    const otherHost = await send(configured.url, "/rpc", {
      headers: { ...JSON_BODY, host: "gate.external" },
      body: LIST,
    });
    expect(otherHost.status).toBe(421);
  });

  it("does not check Host on a non-loopback bind by default", async () => {
    const config = `
[server]
transport = "http"
bind = "0.0.0.0:0"
tls_termination = "upstream"
[server.auth]
mode = "bearer_token"
bearer_tokens = ["t0ken"]
`;
    const exposed = await serve(config, ["--allow-non-loopback"]);
    const url = exposed.url.replace("0.0.0.0", "127.0.0.1");
    const headers = { ...JSON_BODY, authorization: "Bearer t0ken", host: "gate.example.com" };
    expect((await send(url, "/rpc", { headers, body: LIST })).status).toBe(200);
  });
});

describe("the request guard's rules", () => {
  const refusal = (guard: RequestGuard, headers: Record<string, string>) => {
    try {
      guard.checkSource(headers);
      return null;
    } catch (error) {
      return (error as { code: string }).code;
    }
  };

  it("on a non-loopback bind checks Host only against a configured allowed_hosts", () => {
    const open = new RequestGuard({ loopbackBind: false, allowedHosts: [], allowedOrigins: [] });
    expect(refusal(open, { host: "anything.example:8080" })).toBeNull();
    const listed = new RequestGuard({ loopbackBind: false, allowedHosts: ["Gate.Example.com."], allowedOrigins: [] });
    expect(refusal(listed, { host: "gate.example.com:8080" })).toBeNull();
    expect(refusal(listed, { host: "localhost:8080" })).toBeNull();
    expect(refusal(listed, { host: "other.example.com" })).toBe("host_not_allowed");
    expect(refusal(listed, {})).toBe("host_not_allowed");
  });

  it("compares origins as browsers serialize them", () => {
    const guard = new RequestGuard({
      loopbackBind: true,
      allowedHosts: [],
      allowedOrigins: ["HTTPS://App.Example.com:443/"],
    });
    expect(refusal(guard, { host: "127.0.0.1:4000", origin: "https://app.example.com" })).toBeNull();
    expect(refusal(guard, { host: "127.0.0.1:4000", origin: "http://app.example.com" })).toBe("origin_not_allowed");
    expect(refusal(guard, { host: "127.0.0.1:4000", origin: "http://127.0.0.1:4000" })).toBeNull();
    expect(refusal(guard, { host: "127.0.0.1:4000", origin: "http://127.0.0.1:4001" })).toBe("origin_not_allowed");
    expect(refusal(guard, { host: "127.0.0.1:4000", origin: "file://" })).toBe("origin_not_allowed");
  });
});

describe("slow requests", () => {
  const TOKEN = "t0ken-slow";
  const slowConfig = (limits: string) => `
[server]
transport = "http"
bind = "127.0.0.1:0"
[server.auth]
mode = "bearer_token"
bearer_tokens = ["${TOKEN}"]
[server.limits]
max_inflight = 2
${limits}
`;

  /** One server for both timeouts: headers within 1 s, the whole request within 2.5 s. */
  let timeouts: Promise<ServerProcess>;
  beforeAll(() => {
    timeouts = serve(slowConfig("header_timeout_ms = 1000\nrequest_timeout_ms = 2500"));
  });

  interface Trickle {
    socket: Socket;
    received: () => string;
    closed: Promise<number>;
  }

  /** A connection that sends `head`, then one byte of `drip` every `everyMs`, until the server closes it. */
  function trickle(url: string, head: string, everyMs: number, drip = "a"): Trickle {
    const { hostname, port } = new URL(url);
    const socket = connect(Number(port), hostname);
    const started = performance.now();
    let received = "";
    socket.on("data", (chunk) => {
      received += chunk.toString();
    });
    socket.on("error", () => {});
    socket.write(head);
    const timer = setInterval(() => socket.writable && socket.write(drip), everyMs);
    const closed = new Promise<number>((resolve) =>
      socket.once("close", () => {
        clearInterval(timer);
        resolve(performance.now() - started);
      }),
    );
    return { socket, received: () => received, closed };
  }

  const bodyHead = (authorization: string | null) =>
    "POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n" +
    (authorization === null ? "" : `Authorization: ${authorization}\r\n`) +
    "\r\n{";

  it(
    "bodies trickled on max_inflight + 4 sockets hold no slot and are closed after request_timeout_ms",
    { timeout: 30_000 },
    async () => {
      const server = await timeouts;
      const tricklers = [0, 1, 2, 3, 4, 5].map((i) =>
        trickle(server.url, bodyHead(i % 2 === 0 ? `Bearer ${TOKEN}` : null), 200),
      );
      await new Promise((resolve) => setTimeout(resolve, 400));
      const started = performance.now();
      const answer = await send(server.url, "/rpc", {
        headers: { ...JSON_BODY, authorization: `Bearer ${TOKEN}` },
        body: LIST,
      });
      const elapsed = performance.now() - started;
      expect(answer.status).toBe(200);
      expect(resultOf(answer)).toHaveProperty("providers");
      expect(elapsed).toBeLessThan(1500);

      const lifetimes = await Promise.all(tricklers.map((t) => t.closed));
      for (const [index, lifetime] of lifetimes.entries()) {
        expect(lifetime, `trickler ${index}`).toBeGreaterThanOrEqual(2400);
        expect(lifetime, `trickler ${index}`).toBeLessThan(5000);
        expect(tricklers[index]?.received()).toMatch(/^HTTP\/1\.1 408 /);
      }
    },
  );

  it("headers trickled a line at a time are closed after header_timeout_ms", { timeout: 30_000 }, async () => {
    const server = await timeouts;
    const slow = trickle(server.url, "POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\n", 150, "X-Drip: a\r\n");
    const idle = trickle(server.url, "", 60_000);
    for (const connection of [slow, idle]) {
      const lifetime = await connection.closed;
      expect(lifetime).toBeGreaterThanOrEqual(900);
      expect(lifetime).toBeLessThan(2400);
    }
    expect(slow.received()).toMatch(/^HTTP\/1\.1 408 /);
  });

  it("a connection that never sends a request holds neither a slot nor a graceful shutdown", async () => {
    const server = await serve(slowConfig(""));
    const silent = trickle(server.url, "", 60_000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const started = performance.now();
    expect(await server.stop()).toBe(0);
    expect(performance.now() - started).toBeLessThan(5000);
    await silent.closed;
  });

  it(
    "bounds each peer's unauthenticated connections; authenticated ones do not count",
    { timeout: 30_000 },
    async () => {
      const server = await serve(slowConfig("max_unauthenticated_connections_per_peer = 3"));
      const { hostname, port } = new URL(server.url);
      const open = async () => {
        const socket = connect(Number(port), hostname);
        socket.on("error", () => {});
        await new Promise((resolve) => socket.once("connect", resolve));
        return socket;
      };
      /** Whether the server keeps a fresh connection open (rather than closing it at once). */
      const kept = async (socket: Socket) => {
        const closed = new Promise((resolve) => socket.once("close", () => resolve(false)));
        return Promise.race([closed, new Promise((resolve) => setTimeout(() => resolve(true), 500))]);
      };
      /** A kept-alive connection that has carried one authenticated request. */
      const authenticated = async () => {
        const socket = await open();
        socket.write(
          `POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAuthorization: Bearer ${TOKEN}\r\n` +
            `Content-Length: ${Buffer.byteLength(LIST)}\r\n\r\n${LIST}`,
        );
        await new Promise((resolve) => socket.once("data", resolve));
        return socket;
      };

      const signedIn = [await authenticated(), await authenticated(), await authenticated()];
      const anonymous = [await open(), await open(), await open()];
      expect(await Promise.all([...signedIn, ...anonymous].map(kept))).toEqual([true, true, true, true, true, true]);
      expect(await kept(await open())).toBe(false);
      await expect.poll(() => server.stderr()).toContain("too many unauthenticated connections from this address");

      anonymous[0]?.destroy();
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await kept(await open())).toBe(true);
      for (const socket of [...signedIn, ...anonymous]) socket.destroy();
    },
  );
});

describe("/mcp batches", () => {
  it("are refused with -32600; single messages keep working; /rpc refuses batches as the reference does", async () => {
    const server = await serve('[server]\ntransport = "http"\nbind = "127.0.0.1:0"\n');
    const headers = { ...JSON_BODY, ...MCP_ACCEPT };
    const batch = await send(server.url, "/mcp", { headers, body: `[${LIST},${toolCall("providers_list", {}, 2n)}]` });
    expect(batch.status).toBe(400);
    expect(errorOf(batch)).toMatchObject({ code: -32600n, data: { kind: "invalid_request" } });
    expect(errorOf(batch)?.message).toContain("batches are not supported");

    const single = await send(server.url, "/mcp", { headers, body: LIST });
    expect(single.status).toBe(200);
    expect((parseJson(single.text) as JsonObject).result).toHaveProperty("structuredContent");

    const rpcBatch = await send(server.url, "/rpc", { headers: JSON_BODY, body: `[${LIST}]` });
    expect(rpcBatch.status).toBe(400);
    expect(errorOf(rpcBatch)).toMatchObject({ code: -32600n, message: "invalid json-rpc request" });

    // Without [server.metrics], /metrics stays where it was: on the main bind, unauthenticated.
    const metrics = await send(server.url, "/metrics", { method: "GET" });
    expect(metrics.status).toBe(200);
    expect(metrics.text).toContain("decision_gate_");
  });
});

describe("[server.metrics]", () => {
  const withMetrics = (table: string) => `
[server]
transport = "http"
bind = "127.0.0.1:0"
[server.metrics]
${table}
`;
  const scrape = (url: string, headers: Record<string, string> = {}) =>
    send(url, "/metrics", { method: "GET", headers });

  it("bearer_token: /metrics needs the token", async () => {
    const server = await serve(withMetrics('bearer_token = "scrape-t0ken"'));
    const wrong: Array<Record<string, string>> = [
      {},
      { authorization: "Bearer wrong" },
      { authorization: "scrape-t0ken" },
    ];
    for (const headers of wrong) {
      const refused = await scrape(server.url, headers);
      expect(refused.status).toBe(401);
      expect(errorOf(refused)).toMatchObject({ code: -32001n, message: "unauthenticated" });
      expect(refused.text).not.toContain("decision_gate_");
    }
    const answer = await scrape(server.url, { authorization: "Bearer scrape-t0ken" });
    expect(answer.status).toBe(200);
    expect(answer.text).toContain("decision_gate_");
    expect(server.stderr()).not.toContain("scrape-t0ken");
  });

  it("bind: /metrics moves to its own listener (with a token too) and leaves the main bind", async () => {
    const server = await serve(withMetrics('bind = "127.0.0.1:0"\nbearer_token = "scrape-t0ken"'));
    const metricsUrl = /metrics on (\S+)\/metrics/.exec(server.stderr())?.[1] as string;
    expect(metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(metricsUrl).not.toBe(server.url);
    expect((await scrape(server.url, { authorization: "Bearer scrape-t0ken" })).status).toBe(404);
    expect((await scrape(metricsUrl)).status).toBe(401);
    const answer = await scrape(metricsUrl, { authorization: "Bearer scrape-t0ken" });
    expect(answer.status).toBe(200);
    expect(answer.text).toContain("decision_gate_");
    expect((await send(metricsUrl, "/rpc", { headers: JSON_BODY, body: LIST })).status).toBe(404);
    expect((await scrape(metricsUrl, { authorization: "Bearer scrape-t0ken", host: "attacker.example" })).status).toBe(
      421,
    );
  });
});

describe("configuration of the new keys", () => {
  const invalid = (server: string) => () =>
    parseConfigText(`[server]\ntransport = "http"\nbind = "127.0.0.1:4000"\n${server}`);

  it("names the field of every bad value", () => {
    expect(invalid('allowed_origins = ["https://app.example.com/path"]')).toThrow(
      "server.allowed_origins entries must be web origins such as https://app.example.com",
    );
    expect(invalid('allowed_origins = ["*"]')).toThrow("server.allowed_origins entries must be web origins");
    expect(invalid('allowed_hosts = ["gate.example.com:443"]')).toThrow(
      "server.allowed_hosts entries must be host names or IP addresses without a port",
    );
    expect(invalid("[server.limits]\nheader_timeout_ms = 5000\nrequest_timeout_ms = 1000")).toThrow(
      "server.limits.header_timeout_ms must not exceed request_timeout_ms",
    );
    expect(invalid("[server.limits]\nrequest_timeout_ms = 10")).toThrow(
      "server.limits.request_timeout_ms must be between 100 and 3600000",
    );
    expect(invalid("[server.limits]\nmax_unauthenticated_connections_per_peer = 0")).toThrow(
      "server.limits.max_unauthenticated_connections_per_peer must be greater than zero",
    );
    expect(invalid('[server.metrics]\nbind = "localhost:9464"')).toThrow("invalid server.metrics.bind address");
    expect(invalid('[server.metrics]\nbearer_token = " "')).toThrow("auth token must be non-empty");
  });

  it("keeps every default as it was, the new limits aside", () => {
    const { server } = parseConfigText('[server]\ntransport = "http"\nbind = "127.0.0.1:4000"\n').config;
    expect(server.allowed_origins).toEqual([]);
    expect(server.allowed_hosts).toEqual([]);
    expect(server.metrics).toEqual({});
    expect(server.limits).toMatchObject({
      max_inflight: 256,
      header_timeout_ms: 10_000,
      request_timeout_ms: 60_000,
      idle_timeout_ms: 72_000,
      max_unauthenticated_connections_per_peer: 256,
    });
  });

  it("a non-loopback metrics bind needs the non-loopback opt-in", async () => {
    const dir = configDir('[server]\ntransport = "http"\nbind = "127.0.0.1:0"\n[server.metrics]\nbind = "0.0.0.0:0"\n');
    const result = await runCli(["serve", "--config", `${dir}/decision-gate.toml`]);
    rmSync(dir, { recursive: true, force: true });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("Refusing to bind metrics to non-loopback address 0.0.0.0:0.");
  });
});
