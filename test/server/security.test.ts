import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseJson } from "../../src/json/parse.js";
import type { JsonObject, JsonValue } from "../../src/json/value.js";
import { compactJson } from "../../src/json/write.js";
import { RELEASE_GATE } from "../support/scenarios.js";
import { configDir, runCli, type ServerProcess, startServerProcess } from "../support/server-process.js";
import { generateTlsFiles, httpsPost, type TlsFiles } from "../support/tls.js";

const LIST = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"providers_list","arguments":{}}}';
const JSON_BODY = { "content-type": "application/json" };
let tls: TlsFiles;
const tlsDir = mkdtempSync(join(tmpdir(), "dg-tls-"));
const servers: ServerProcess[] = [];

beforeAll(() => {
  tls = generateTlsFiles(tlsDir);
});
afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()));
  rmSync(tlsDir, { recursive: true, force: true });
});

async function serve(config: string, args: string[] = []): Promise<ServerProcess> {
  const server = await startServerProcess(config, args);
  servers.push(server);
  return server;
}

/** A plain HTTP server on a free loopback port, followed by `tables` (more TOML). */
const httpServer = (tables: string) => `
[server]
transport = "http"
bind = "127.0.0.1:0"
${tables}`;

const mtlsAuth = (subject: string) => `
[server.auth]
mode = "mtls"
mtls_subjects = ["${subject}"]
`;

const tlsTable = () => `
[server.tls]
cert_path = "${tls.serverCert}"
key_path = "${tls.serverKey}"
client_ca_path = "${tls.caCert}"
require_client_cert = true
`;

const codeOf = (body: string) =>
  ((parseJson(body.replace(/^data: /, "")) as JsonObject).error as JsonObject | undefined)?.code ?? "ok";

describe("TLS and mTLS terminated in-process", () => {
  it("serves bearer-authenticated callers over HTTPS", async () => {
    const server = await serve(
      httpServer(`
[server.auth]
mode = "bearer_token"
bearer_tokens = ["tls-token"]
[server.tls]
cert_path = "${tls.serverCert}"
key_path = "${tls.serverKey}"
`),
    );
    expect(server.url).toMatch(/^https:/);
    const ok = await httpsPost(`${server.url}/rpc`, LIST, {
      ca: tls.caCert,
      headers: { authorization: "Bearer tls-token" },
    });
    expect([ok.status, codeOf(ok.body)]).toEqual([200, "ok"]);
    const denied = await httpsPost(`${server.url}/rpc`, LIST, { ca: tls.caCert });
    expect([denied.status, codeOf(denied.body)]).toEqual([401, -32001n]);
  });

  it("takes the mTLS subject from the verified certificate and ignores a spoofed header", async () => {
    const agent = await serve(httpServer(`${mtlsAuth("CN=agent-1,O=Example")}${tlsTable()}`));
    const withCertificate = { ca: tls.caCert, cert: tls.clientCert, key: tls.clientKey };
    expect(codeOf((await httpsPost(`${agent.url}/rpc`, LIST, withCertificate)).body)).toBe("ok");
    const spoofing = { ...withCertificate, headers: { "x-decision-gate-client-subject": "CN=admin" } };
    expect(codeOf((await httpsPost(`${agent.url}/rpc`, LIST, spoofing)).body)).toBe("ok");

    const adminOnly = await serve(httpServer(`${mtlsAuth("CN=admin")}${tlsTable()}`));
    const refused = await httpsPost(`${adminOnly.url}/rpc`, LIST, spoofing);
    expect([refused.status, codeOf(refused.body)]).toEqual([403, -32003n]);
  });

  it("refuses the handshake without a client certificate, or with one from an untrusted CA", async () => {
    const server = await serve(httpServer(`${mtlsAuth("CN=agent-1,O=Example")}${tlsTable()}`));
    await expect(httpsPost(`${server.url}/rpc`, LIST, { ca: tls.caCert })).rejects.toThrow();
    await expect(
      httpsPost(`${server.url}/rpc`, LIST, { ca: tls.caCert, cert: tls.strangerCert, key: tls.strangerKey }),
    ).rejects.toThrow();
  });
});

describe("TLS terminated upstream", () => {
  const upstream = (proxies: string) => httpServer(`tls_termination = "upstream"\n${proxies}${mtlsAuth("CN=admin")}`);

  it("believes the subject header only from a trusted proxy", async () => {
    const anyProxy = await serve(upstream(""));
    const headers = { ...JSON_BODY, "x-decision-gate-client-subject": "CN=admin" };
    expect((await fetch(`${anyProxy.url}/rpc`, { method: "POST", body: LIST, headers })).status).toBe(200);
    const trustedElsewhere = await serve(upstream('trusted_proxies = ["10.0.0.0/8"]'));
    const response = await fetch(`${trustedElsewhere.url}/rpc`, { method: "POST", body: LIST, headers });
    expect(response.status).toBe(401);
  });

  it("never believes the header when nothing terminates TLS for it", async () => {
    const plain = await serve(httpServer(mtlsAuth("CN=admin")));
    const response = await fetch(`${plain.url}/rpc`, {
      method: "POST",
      body: LIST,
      headers: { ...JSON_BODY, "x-decision-gate-client-subject": "CN=admin" },
    });
    expect(response.status).toBe(401);
  });
});

describe("authentication on every transport", () => {
  const bearer = (transport: string) => `
[server]
transport = "${transport}"
bind = "127.0.0.1:0"
[server.auth]
mode = "bearer_token"
bearer_tokens = ["t0ken-a", "t0ken-b"]
`;

  it("SSE answers 401 with an SSE body and the challenge", async () => {
    const server = await serve(bearer("sse"));
    const denied = await fetch(`${server.url}/rpc`, { method: "POST", body: LIST, headers: JSON_BODY });
    expect(denied.status).toBe(401);
    expect(denied.headers.get("www-authenticate")).toBe('Bearer realm="decision-gate"');
    expect(codeOf(await denied.text())).toBe(-32001n);
    const ok = await fetch(`${server.url}/rpc`, {
      method: "POST",
      body: LIST,
      headers: { ...JSON_BODY, authorization: "Bearer t0ken-b" },
    });
    expect(codeOf(await ok.text())).toBe("ok");
  });

  it("/mcp requires the token too", async () => {
    const server = await serve(bearer("http"));
    const call = async (headers: Record<string, string>) => {
      const client = new Client({ name: "t", version: "1" });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), { requestInit: { headers } }),
      );
      try {
        return await client.callTool({ name: "providers_list", arguments: {} });
      } finally {
        await client.close();
      }
    };
    expect((await call({ authorization: "Bearer t0ken-a" })).isError).toBeFalsy();
    await expect(call({})).rejects.toMatchObject({ code: 401 });
    await expect(call({ authorization: "Bearer wrong" })).rejects.toMatchObject({ code: 401 });
    const initialize = {
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "1" } },
    };
    const refused = await fetch(`${server.url}/mcp`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify(initialize),
    });
    expect(refused.status).toBe(401);
    expect(refused.headers.get("www-authenticate")).toBe('Bearer realm="decision-gate"');
    expect(await refused.json()).toMatchObject({ id: null, error: { code: -32001, message: "unauthenticated" } });
    expect(server.stderr()).toMatch(
      /"event":"mcp_tool_authz".*"action":"initialize".*"decision":"deny"|"decision":"deny".*"action":"initialize"/,
    );
  });

  it("stdio is local only: another auth mode on stdio is a configuration error", async () => {
    const dir = configDir(
      '[server]\ntransport = "stdio"\n[server.auth]\nmode = "bearer_token"\nbearer_tokens = ["x"]\n',
    );
    const result = await runCli(["serve", "--config", join(dir, "decision-gate.toml")]);
    rmSync(dir, { recursive: true, force: true });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("stdio transport only supports local_only auth");
  });
});

describe("binding beyond loopback", () => {
  const exposed = (auth: string, extra = "") => `
[server]
transport = "http"
bind = "0.0.0.0:0"
${extra}
${auth}
`;
  const attempt = async (config: string, args: string[] = [], env: Record<string, string> = {}) => {
    const dir = configDir(config);
    const result = await runCli(["serve", "--config", join(dir, "decision-gate.toml"), ...args], { env });
    rmSync(dir, { recursive: true, force: true });
    return result;
  };
  const bearerAuth = '[server.auth]\nmode = "bearer_token"\nbearer_tokens = ["x"]';

  it("needs the opt-in, non-local auth, and TLS or upstream termination", async () => {
    expect((await attempt(exposed(bearerAuth, 'tls_termination = "upstream"'))).stderr).toContain(
      "Set --allow-non-loopback or DECISION_GATE_ALLOW_NON_LOOPBACK=1 to opt in.",
    );
    expect((await attempt(exposed(bearerAuth), ["--allow-non-loopback"])).stderr).toContain(
      "configure server.tls or set server.tls_termination=upstream.",
    );
    expect((await attempt(exposed(""), ["--allow-non-loopback"])).stderr).toContain("non-loopback");
    const mtls = `[server.auth]\nmode = "mtls"\nmtls_subjects = ["a"]\n[server.tls]\ncert_path = "${tls.serverCert}"\nkey_path = "${tls.serverKey}"`;
    expect((await attempt(exposed(mtls), ["--allow-non-loopback"])).stderr).toContain(
      "mTLS requires tls.client_ca_path.",
    );
    expect((await attempt(exposed(bearerAuth), [], { DECISION_GATE_ALLOW_NON_LOOPBACK: "maybe" })).stderr).toContain(
      "Invalid value for DECISION_GATE_ALLOW_NON_LOOPBACK: maybe. Expected true/false/1/0/yes/no/on/off.",
    );
  });

  it("serves once every condition holds, opted in through the environment", async () => {
    process.env.DECISION_GATE_ALLOW_NON_LOOPBACK = "yes";
    const server = await startServerProcess(exposed(bearerAuth, 'tls_termination = "upstream"')).finally(() => {
      delete process.env.DECISION_GATE_ALLOW_NON_LOOPBACK;
    });
    servers.push(server);
    expect(server.url).toContain("0.0.0.0");
    const url = server.url.replace("0.0.0.0", "127.0.0.1");
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  }, 30_000);
});

describe("limits", () => {
  it("rate-limits each principal on its own (D7)", async () => {
    const server = await serve(
      httpServer(`
[server.limits.rate_limit]
max_requests = 5
window_ms = 60000
[server.auth]
mode = "bearer_token"
bearer_tokens = ["alpha", "beta"]
`),
    );
    const send = (token: string) =>
      fetch(`${server.url}/rpc`, {
        method: "POST",
        body: LIST,
        headers: { ...JSON_BODY, authorization: `Bearer ${token}` },
      });
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push((await send("alpha")).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    const limited = parseJson(await (await send("alpha")).text()) as { error: { code: bigint; data: JsonObject } };
    expect(limited.error.code).toBe(-32071n);
    expect(limited.error.data).toMatchObject({ kind: "rate_limited", retryable: true });
    expect(limited.error.data.retry_after_ms as bigint).toBeGreaterThan(0n);
    for (let i = 0; i < 8; i++)
      await fetch(`${server.url}/rpc`, {
        method: "POST",
        body: LIST,
        headers: { ...JSON_BODY, authorization: `Bearer noise-${i}` },
      });
    expect((await send("beta")).status).toBe(200);
  });

  it("sheds load beyond max_inflight with 503 and a retryable -32072", async () => {
    const server = await serve(
      httpServer(`
[server.limits]
max_inflight = 1
[[providers]]
name = "slow"
type = "mcp"
command = ["${process.execPath}", "${new URL("../fixtures/providers/reference-provider.mjs", import.meta.url).pathname}"]
capabilities_path = "${new URL("../fixtures/providers/slow-contract.json", import.meta.url).pathname}"
`),
    );
    const slow = compactJson({
      jsonrpc: "2.0",
      id: 1n,
      method: "tools/call",
      params: {
        name: "evidence_query",
        arguments: {
          query: { provider_id: "slow", check_id: "query", params: { mode: "slow", delay_ms: 600n } },
          context: {
            tenant_id: 1n,
            namespace_id: 2n,
            run_id: "r",
            scenario_id: "s",
            stage_id: "a",
            trigger_id: "t",
            trigger_time: { kind: "logical", value: 1n },
          },
        },
      },
    });
    const first = fetch(`${server.url}/rpc`, { method: "POST", body: slow, headers: JSON_BODY });
    await new Promise((resolve) => setTimeout(resolve, 150));
    const second = await fetch(`${server.url}/rpc`, { method: "POST", body: LIST, headers: JSON_BODY });
    expect(second.status).toBe(503);
    expect((parseJson(await second.text()) as { error: { code: bigint; data: JsonObject } }).error).toMatchObject({
      code: -32072n,
      data: { kind: "inflight_limit", retryable: true },
    });
    expect((await first).status).toBe(200);
  });

  it("refuses oversized headers (431) and keeps serving", async () => {
    const server = await serve('[server]\ntransport = "http"\nbind = "127.0.0.1:0"\n');
    const response = await fetch(`${server.url}/rpc`, {
      method: "POST",
      body: LIST,
      headers: { ...JSON_BODY, "x-padding": "x".repeat(20_000) },
    });
    expect(response.status).toBe(431);
    expect((await fetch(`${server.url}/rpc`, { method: "POST", body: LIST, headers: JSON_BODY })).status).toBe(200);
  });
});

describe("hostile input", () => {
  it("gets a well-formed error for every malformed message on /rpc and /mcp, and changes nothing", async () => {
    const server = await serve(
      httpServer(`
[[providers]]
name = "time"
type = "builtin"
`),
    );
    const rpc = async (body: string) => {
      const response = await fetch(`${server.url}/rpc`, { method: "POST", body, headers: JSON_BODY });
      return { status: response.status, text: await response.text() };
    };
    const tool = (name: string, args: JsonValue) =>
      compactJson({ jsonrpc: "2.0", id: 1n, method: "tools/call", params: { name, arguments: args } });
    const spec = parseJson(RELEASE_GATE) as JsonObject;
    await rpc(tool("scenario_define", { spec }));
    const run = { run_id: "run-1", tenant_id: 1n, namespace_id: 2n };
    await rpc(
      tool("scenario_start", {
        scenario_id: "release-gate",
        run_config: { ...run, scenario_id: "release-gate", dispatch_targets: [], policy_tags: [] },
        started_at: { kind: "logical", value: 1n },
        issue_entry_packets: true,
      }),
    );
    const snapshot = async () => {
      const exported = parseJson(
        (
          await rpc(
            tool("runpack_export", {
              scenario_id: "release-gate",
              ...run,
              output_dir: join(tlsDir, `snap-${Date.now()}-${Math.random()}`),
              generated_at: { kind: "logical", value: 1n },
              include_verification: false,
            }),
          )
        ).text,
      ) as JsonObject;
      const manifest = (((exported.result as JsonObject).content as JsonObject[])[0]?.json as JsonObject)
        .manifest as JsonObject;
      return compactJson((manifest.integrity as JsonObject).file_hashes as JsonValue);
    };
    const before = await snapshot();

    const toolNames = [
      "scenario_next",
      "scenario_trigger",
      "scenario_submit",
      "scenario_define",
      "scenario_start",
      "runpack_verify",
      "precheck",
      "nope",
    ];
    const messages = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.json({ maxDepth: 4 }),
      fc
        .record({
          jsonrpc: fc.oneof(fc.constant("2.0"), fc.string()),
          id: fc.jsonValue(),
          method: fc.oneof(fc.constant("tools/call"), fc.string()),
          params: fc.jsonValue(),
        })
        .map((m) => JSON.stringify(m)),
      fc
        .record({ name: fc.constantFrom(...toolNames), arguments: fc.jsonValue({ maxDepth: 3 }) })
        .map((params) => JSON.stringify({ jsonrpc: "2.0", id: 9, method: "tools/call", params })),
    );
    await fc.assert(
      fc.asyncProperty(messages, async (body) => {
        const answer = await rpc(body);
        const parsed = parseJson(answer.text) as JsonObject;
        expect(parsed.jsonrpc).toBe("2.0");
        if (parsed.error !== undefined) {
          const error = parsed.error as JsonObject;
          expect(typeof error.code).toBe("bigint");
          expect(typeof error.message).toBe("string");
          expect(typeof (error.data as JsonObject).kind).toBe("string");
        }
        const mcp = await fetch(`${server.url}/mcp`, {
          method: "POST",
          body,
          headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
        });
        expect(mcp.status).toBeLessThan(500);
        const mcpText = await mcp.text();
        if (mcpText.length > 0) expect(() => JSON.parse(mcpText)).not.toThrow();
      }),
      { numRuns: 250 },
    );
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect(await snapshot()).toBe(before);
  }, 120_000);
});
