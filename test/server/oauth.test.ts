import { createHmac } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AuthorizationServer,
  freePort,
  handMadeToken,
  SCOPES,
  type SigningKey,
  signingKey,
} from "../support/oauth-provider.js";
import { RELEASE_GATE } from "../support/scenarios.js";
import { type ServerProcess, startServerProcess } from "../support/server-process.js";

/*
 * `[server.auth] mode = "oauth"` against a real authorization server (oidc-provider) started here: tokens come from
 * its client_credentials grant with a resource indicator; the negative cases are hand-made tokens that differ from
 * an accepted one in one respect each.
 */

const [REQUIRED, READ, WRITE] = SCOPES;
const tokensSeen: string[] = [];
let as: AuthorizationServer;
let server: ServerProcess;
let providerKey: SigningKey;
let resource: string;
let metadataUrl: string;

const oauthConfig = (port: number, issuer: string) => `
[server]
transport = "http"
bind = "127.0.0.1:${port}"
[server.auth]
mode = "oauth"
tenant_isolation = true
[server.auth.oauth]
issuer = "${issuer}"
audience = "http://127.0.0.1:${port}/mcp"
required_scopes = ["${REQUIRED}"]
read_scope = "${READ}"
write_scope = "${WRITE}"
[[server.auth.principals]]
subject = "oauth:${issuer}#release-agent"
roles = [{ name = "TenantAdmin" }]
[[providers]]
name = "time"
type = "builtin"
`;

beforeAll(async () => {
  providerKey = await signingKey("as-key-1");
  as = await AuthorizationServer.start([providerKey]);
  const port = await freePort();
  resource = `http://127.0.0.1:${port}/mcp`;
  metadataUrl = `http://127.0.0.1:${port}/.well-known/oauth-protected-resource/mcp`;
  server = await startServerProcess(oauthConfig(port, as.issuer));
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await as?.close();
});

async function token(scope: string): Promise<string> {
  const issued = await as.token(resource, scope);
  tokensSeen.push(issued);
  return issued;
}

/** A tools/call over `/rpc`, answered as status, challenge and JSON-RPC body. */
async function rpcCall(tool: string, args: object, bearer?: string) {
  const response = await fetch(`${server.url}/rpc`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(bearer === undefined ? {} : { authorization: `Bearer ${bearer}` }),
    },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: tool, arguments: args } }),
  });
  return {
    status: response.status,
    challenge: response.headers.get("www-authenticate"),
    body: (await response.json()) as { result?: unknown; error?: { code: number; message: string; data: unknown } },
  };
}

/** A raw MCP `tools/call` POST to `/mcp`. */
async function mcpCall(tool: string, bearer: string) {
  const response = await fetch(`${server.url}/mcp`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      authorization: `Bearer ${bearer}`,
    },
    body: JSON.stringify({ jsonrpc: "2.0", id: 7, method: "tools/call", params: { name: tool, arguments: {} } }),
  });
  const body = (await response.json()) as { result?: { isError?: boolean }; error?: unknown };
  return { status: response.status, challenge: response.headers.get("www-authenticate"), body };
}

async function sdkClient(bearer: string): Promise<Client> {
  const client = new Client({ name: "oauth-test", version: "1" });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(resource), {
      requestInit: { headers: { authorization: `Bearer ${bearer}` } },
    }),
  );
  return client;
}

const now = () => Math.floor(Date.now() / 1000);
/** The claims of an access token this server accepts, besides the defaults of `handMadeToken`. */
const validClaims = () => ({ iss: as.issuer, aud: resource, scope: SCOPES.join(" ") });
/** One base64url segment of a JWT. */
const segment = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");

const defineArgs = (scenarioId: string) => ({ spec: { ...JSON.parse(RELEASE_GATE), scenario_id: scenarioId } });

describe("protected-resource metadata (RFC 9728)", () => {
  it("is served without credentials at the well-known path and its /mcp form", async () => {
    const expected = {
      resource,
      authorization_servers: [as.issuer],
      scopes_supported: [REQUIRED, READ, WRITE],
      bearer_methods_supported: ["header"],
    };
    for (const path of ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"]) {
      const response = await fetch(`${server.url}${path}`);
      expect(response.status, path).toBe(200);
      expect(await response.json()).toEqual(expected);
    }
  });

  it("every 401 points to it, on /rpc and /mcp; the Decision Gate error body is unchanged", async () => {
    const denied = await rpcCall("providers_list", {});
    expect(denied.status).toBe(401);
    expect(denied.challenge).toBe(`Bearer resource_metadata="${metadataUrl}"`);
    expect(denied.body).toEqual({
      jsonrpc: "2.0",
      id: 1,
      error: {
        code: -32001,
        message: "unauthenticated",
        data: { kind: "unauthenticated", retryable: false, request_id: "1" },
      },
    });
    const initialize = await fetch(`${server.url}/mcp`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "1" } },
      }),
    });
    expect(initialize.status).toBe(401);
    expect(initialize.headers.get("www-authenticate")).toBe(`Bearer resource_metadata="${metadataUrl}"`);
  });
});

describe("tokens from the authorization server's client_credentials grant", () => {
  it("with every scope: read and write tools over /rpc and /mcp, as principal oauth:<iss>#<sub>", async () => {
    const bearer = await token(SCOPES.join(" "));
    expect((await rpcCall("providers_list", {}, bearer)).body.result).toBeDefined();
    const definedOverRpc = await rpcCall("scenario_define", defineArgs("oauth-rpc"), bearer);
    expect(definedOverRpc.body.result, JSON.stringify(definedOverRpc)).toBeDefined();
    const client = await sdkClient(bearer);
    try {
      expect((await client.callTool({ name: "providers_list", arguments: {} })).isError).toBeFalsy();
      const defined = await client.callTool({ name: "scenario_define", arguments: defineArgs("oauth-mcp") });
      expect(defined.isError, JSON.stringify(defined)).toBeFalsy();
    } finally {
      await client.close();
    }
    const principal = `oauth:${as.issuer}#release-agent`;
    expect(server.stderr()).toContain(`"auth_method":"oauth","subject":"${principal}"`);
  });

  it("read scope only: read-only tools pass, write tools are 403 insufficient_scope naming the scope", async () => {
    const bearer = await token(`${REQUIRED} ${READ}`);
    expect((await rpcCall("providers_list", {}, bearer)).body.result).toBeDefined();
    const write = await rpcCall("scenario_define", defineArgs("oauth-read-only"), bearer);
    const challenge = `Bearer error="insufficient_scope", scope="${REQUIRED} ${WRITE}", resource_metadata="${metadataUrl}"`;
    expect(write.status).toBe(403);
    expect(write.challenge).toBe(challenge);
    expect(write.body.error).toMatchObject({ code: -32003, message: "unauthorized", data: { kind: "unauthorized" } });
    const overMcp = await mcpCall("scenario_define", bearer);
    expect(overMcp.status).toBe(403);
    expect(overMcp.challenge).toBe(challenge);
    const readOverMcp = await mcpCall("providers_list", bearer);
    expect(readOverMcp.status).toBe(200);
    expect(readOverMcp.body.result).toBeDefined();
    expect(readOverMcp.body.result?.isError).toBeFalsy();
    expect(server.stderr()).toMatch(
      /"decision":"deny","action":"scenario_define".*"reason":"unauthorized: token lacks scope decision-gate:write"/,
    );
  });

  it("without a required scope every call is 403 insufficient_scope", async () => {
    const bearer = await token(`${READ} ${WRITE}`);
    const refused = await rpcCall("providers_list", {}, bearer);
    expect(refused.status).toBe(403);
    expect(refused.challenge).toBe(
      `Bearer error="insufficient_scope", scope="${REQUIRED}", resource_metadata="${metadataUrl}"`,
    );
  });
});

describe("the principal oauth:<iss>#<sub>", () => {
  it("is what [[server.auth.principals]] names for tenant isolation", async () => {
    const args = { tenant_id: 1, namespace_id: 2 };
    const agent = await token(SCOPES.join(" "));
    expect((await rpcCall("scenarios_list", args, agent)).status).toBe(200);
    const stranger = await handMadeToken(providerKey, { ...validClaims(), sub: "stranger" });
    tokensSeen.push(stranger);
    const refused = await rpcCall("scenarios_list", args, stranger);
    expect(refused.status).toBe(403);
    expect(refused.challenge).toBeNull();
    expect(refused.body.error?.code).toBe(-32003);
    expect(server.stderr()).toMatch(new RegExp(`"event":"tenant_authz".*"principal_id":"oauth:${as.issuer}#stranger"`));
  });
});

describe("hand-made tokens", () => {
  it("a well-formed one signed with the authorization server's key is accepted (the control)", async () => {
    const bearer = await handMadeToken(providerKey, validClaims());
    tokensSeen.push(bearer);
    expect((await rpcCall("providers_list", {}, bearer)).status).toBe(200);
  });

  const cases: Array<[name: string, reason: string, make: () => Promise<string>]> = [
    [
      "wrong audience",
      "token aud rejected",
      () => handMadeToken(providerKey, { ...validClaims(), aud: "https://other.example/mcp" }),
    ],
    [
      "wrong issuer",
      "token iss rejected",
      () => handMadeToken(providerKey, { ...validClaims(), iss: "http://127.0.0.1:1" }),
    ],
    [
      "expired",
      "token expired",
      () => handMadeToken(providerKey, { ...validClaims(), iat: now() - 900, exp: now() - 300 }),
    ],
    ["not yet valid", "token not yet valid", () => handMadeToken(providerKey, { ...validClaims(), nbf: now() + 300 })],
    ["without sub", "token sub rejected", () => handMadeToken(providerKey, { ...validClaims(), sub: undefined })],
    [
      "signed by another key under the server's kid",
      "token signature invalid",
      async () => handMadeToken(await signingKey(providerKey.kid), validClaims()),
    ],
    ["alg none", "token algorithm not allowed", async () => unsigned(validClaims())],
    ["HS256 keyed with the public key", "token algorithm not allowed", async () => hmacWithPublicKey(validClaims())],
    ["opaque", "access token is not a JWT", async () => "opaque-reference-token-0123456789"],
  ];

  it.each(cases)("%s: 401 invalid_token (%s)", async (_name, reason, make) => {
    const bearer = await make();
    tokensSeen.push(bearer);
    const refused = await rpcCall("providers_list", {}, bearer);
    expect(refused.status).toBe(401);
    expect(refused.challenge).toBe(`Bearer error="invalid_token", resource_metadata="${metadataUrl}"`);
    expect(refused.body.error?.code).toBe(-32001);
    expect(server.stderr()).toContain(`"reason":"unauthenticated: ${reason}"`);
  });

  function unsigned(claims: object): string {
    const iat = now();
    return `${segment({ alg: "none", typ: "at+jwt" })}.${segment({ sub: "x", iat, exp: iat + 300, ...claims })}.`;
  }

  /** The classic key-confusion attack: HMAC "keyed" with the published public key. */
  async function hmacWithPublicKey(claims: object): Promise<string> {
    const jwks = (await (await fetch(`${as.issuer}/jwks`)).json()) as { keys: object[] };
    const secret = JSON.stringify(jwks.keys[0]);
    const iat = now();
    const input = `${segment({ alg: "HS256", kid: providerKey.kid })}.${segment({ sub: "x", iat, exp: iat + 300, ...claims })}`;
    return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
  }
});

describe("key rotation", () => {
  it("a token under a new key is accepted once the key set is refetched; unknown kids refetch at most once per cooldown", async () => {
    const oldToken = await token(SCOPES.join(" "));
    expect((await rpcCall("providers_list", {}, oldToken)).status).toBe(200);
    const newKey = await signingKey("as-key-2");
    as.rotate([newKey, providerKey]);
    const rotated = await token(SCOPES.join(" "));
    // The server refetches at most once per 10 s cooldown, so the first attempts may still be refused.
    const deadline = Date.now() + 20_000;
    let status = 0;
    while (Date.now() < deadline) {
      status = (await rpcCall("providers_list", {}, rotated)).status;
      if (status === 200) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(status).toBe(200);
    expect((await rpcCall("providers_list", {}, oldToken)).status).toBe(200);

    // Just refetched: a burst of tokens under unknown kids must not make the server hammer the authorization server.
    const before = as.requestsTo("/jwks");
    const rogue = await signingKey("unused");
    for (let index = 0; index < 10; index++) {
      const forged = await handMadeToken(rogue, validClaims(), { kid: `unknown-${index}` });
      expect((await rpcCall("providers_list", {}, forged)).status).toBe(401);
    }
    expect(as.requestsTo("/jwks") - before).toBeLessThanOrEqual(1);
  }, 40_000);
});

describe("the official MCP SDK client with its OAuth support", () => {
  it("discovers the authorization server from the 401, gets a token by client_credentials and calls tools", async () => {
    const { ClientCredentialsProvider } = await import("@modelcontextprotocol/sdk/client/auth-extensions.js");
    const authProvider = new ClientCredentialsProvider({
      clientId: "release-agent",
      clientSecret: "release-agent-secret-0123456789abcdef",
      expectedIssuer: as.issuer,
      // The SDK's client_credentials request asks for the client's own scopes, not the server's `scopes_supported`.
      scope: SCOPES.join(" "),
    });
    const client = new Client({ name: "oauth-sdk", version: "1" });
    await client.connect(new StreamableHTTPClientTransport(new URL(resource), { authProvider }));
    try {
      const { tools } = await client.listTools();
      expect(tools.map((tool) => tool.name)).toContain("scenario_define");
      const defined = await client.callTool({ name: "scenario_define", arguments: defineArgs("oauth-sdk") });
      expect(defined.isError, JSON.stringify(defined)).toBeFalsy();
      const issued = authProvider.tokens()?.access_token;
      expect(issued).toBeDefined();
      tokensSeen.push(issued as string);
    } finally {
      await client.close();
    }
  });
});

describe("secrets", () => {
  it("no access token reaches the server's logs or audit lines", () => {
    expect(tokensSeen.length).toBeGreaterThan(10);
    const output = server.stderr();
    for (const seen of tokensSeen) {
      expect(output).not.toContain(seen);
      expect(output).not.toContain(seen.split(".")[1] ?? seen);
    }
  });
});
