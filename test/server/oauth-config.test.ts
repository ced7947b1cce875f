import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, parseConfigText } from "../../src/config/load.js";
import { discoverJwksUri, metadataUrls } from "../../src/server/oauth/discovery.js";
import { OAuthResourceServer } from "../../src/server/oauth/resource-server.js";
import { AuthorizationServer, freePort, handMadeToken, signingKey } from "../support/oauth-provider.js";
import { startServerProcess } from "../support/server-process.js";

const oauth = (table: string, mode = "oauth") =>
  `[server]\ntransport = "http"\nbind = "127.0.0.1:4000"\n[server.auth]\nmode = "${mode}"\n${table}`;
const table = (keys: string) =>
  `[server.auth.oauth]\nissuer = "https://auth.example.com"\naudience = "https://gate.example.com/mcp"\n${keys}`;

function issues(toml: string): Array<{ path: string; message: string }> {
  try {
    parseConfigText(toml);
  } catch (error) {
    if (error instanceof ConfigError) return (error.details?.issues ?? []) as Array<{ path: string; message: string }>;
    throw error;
  }
  return [];
}

describe("[server.auth.oauth] validation names the field", () => {
  const cases: Array<[toml: string, path: string, message: string]> = [
    [oauth(""), "server.auth.oauth", "oauth auth requires [server.auth.oauth]"],
    [oauth(table(""), "bearer_token"), "server.auth.oauth", 'server.auth.oauth requires mode = "oauth"'],
    [
      oauth(table("").replace("https://auth.example.com", "http://auth.example.com")),
      "server.auth.oauth.issuer",
      "server.auth.oauth.issuer must use https (http only for a loopback host)",
    ],
    [
      oauth(table("").replace("https://auth.example.com", "auth.example.com")),
      "server.auth.oauth.issuer",
      "server.auth.oauth.issuer must be an absolute https URL",
    ],
    [
      oauth(table("").replace("https://gate.example.com/mcp", "https://Gate.example.com/mcp")),
      "server.auth.oauth.audience",
      "server.auth.oauth.audience must be a canonical resource URI",
    ],
    [
      oauth(table("").replace("https://gate.example.com/mcp", "https://gate.example.com/mcp#x")),
      "server.auth.oauth.audience",
      "server.auth.oauth.audience must not have a fragment",
    ],
    [
      oauth(table('jwks_uri = "http://keys.example.com/jwks"')),
      "server.auth.oauth.jwks_uri",
      "server.auth.oauth.jwks_uri must use https",
    ],
    [
      oauth(table('read_scope = "read write"')),
      "server.auth.oauth.read_scope",
      "server.auth.oauth.read_scope must be a scope token",
    ],
    [
      oauth(table('required_scopes = [""]')),
      "server.auth.oauth.required_scopes[0]",
      "server.auth.oauth.required_scopes entries must be a scope token",
    ],
  ];

  it.each(cases.map(([toml, path, message]) => ({ toml, path, message })))(
    "$path: $message",
    ({ toml, path, message }) => {
      const found = issues(toml);
      expect(
        found.some((issue) => issue.path === path && issue.message.includes(message)),
        JSON.stringify(found),
      ).toBe(true);
    },
  );

  it("accepts a loopback http issuer and the full table", () => {
    const { config } = parseConfigText(
      oauth(
        '[server.auth.oauth]\nissuer = "http://127.0.0.1:9000"\naudience = "http://127.0.0.1:4000/mcp"\n' +
          'jwks_uri = "http://localhost:9000/jwks"\nrequired_scopes = ["dg"]\nread_scope = "dg:read"\nwrite_scope = "dg:write"\n',
      ),
    );
    expect(config.server.auth.oauth).toEqual({
      issuer: "http://127.0.0.1:9000",
      audience: "http://127.0.0.1:4000/mcp",
      jwks_uri: "http://localhost:9000/jwks",
      required_scopes: ["dg"],
      read_scope: "dg:read",
      write_scope: "dg:write",
    });
  });
});

describe("docs/MCP_CLIENTS.md", () => {
  it("shows a valid OAuth configuration", () => {
    const guide = readFileSync(new URL("../../docs/MCP_CLIENTS.md", import.meta.url), "utf8");
    const block = /## Remote clients with OAuth[\s\S]*?```toml\n([\s\S]*?)```/.exec(guide)?.[1] ?? "";
    expect(parseConfigText(block).config.server.auth).toMatchObject({
      mode: "oauth",
      oauth: { issuer: "https://auth.example.com", audience: "https://gate.example.com/mcp" },
    });
  });
});

describe("non-loopback binding (D8) accepts oauth as non-local authentication", () => {
  const exposed =
    `[server]\ntransport = "http"\nbind = "0.0.0.0:0"\ntls_termination = "upstream"\n${table("")}`.replace(
      "[server.auth.oauth]",
      '[server.auth]\nmode = "oauth"\n[server.auth.oauth]',
    );

  it("serves with the opt-in, and still refuses without it", async () => {
    const server = await startServerProcess(exposed, ["--allow-non-loopback"]);
    try {
      const metadata = await fetch(
        `${server.url.replace("0.0.0.0", "127.0.0.1")}/.well-known/oauth-protected-resource`,
      );
      expect(await metadata.json()).toMatchObject({ resource: "https://gate.example.com/mcp" });
    } finally {
      await server.stop();
    }
    await expect(startServerProcess(exposed)).rejects.toThrow(/Refusing to bind to non-loopback address 0\.0\.0\.0:0/);
  }, 60_000);
});

describe("authorization server discovery", () => {
  let http: Server;
  let origin: string;
  const documents = new Map<string, object>();

  beforeAll(async () => {
    http = createServer((request, response) => {
      const document = documents.get(request.url ?? "");
      response.writeHead(document === undefined ? 404 : 200, { "content-type": "application/json" });
      response.end(document === undefined ? "{}" : JSON.stringify(document));
    });
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
    origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => http.close(() => resolve())));

  it("tries RFC 8414 (path inserted) before OpenID Connect (path appended)", () => {
    expect(metadataUrls("https://as.example.com/tenant-1")).toEqual([
      "https://as.example.com/.well-known/oauth-authorization-server/tenant-1",
      "https://as.example.com/tenant-1/.well-known/openid-configuration",
    ]);
    expect(metadataUrls("https://as.example.com")).toEqual([
      "https://as.example.com/.well-known/oauth-authorization-server",
      "https://as.example.com/.well-known/openid-configuration",
    ]);
  });

  it("reads jwks_uri from RFC 8414 metadata, else from OpenID Connect metadata", async () => {
    documents.set("/.well-known/oauth-authorization-server/a", { issuer: `${origin}/a`, jwks_uri: `${origin}/a/keys` });
    documents.set("/b/.well-known/openid-configuration", { issuer: `${origin}/b`, jwks_uri: `${origin}/b/keys` });
    expect(await discoverJwksUri(`${origin}/a`)).toBe(`${origin}/a/keys`);
    expect(await discoverJwksUri(`${origin}/b`)).toBe(`${origin}/b/keys`);
  });

  it("refuses metadata that names another issuer, or a jwks_uri over plain http elsewhere", async () => {
    documents.set("/.well-known/oauth-authorization-server/c", {
      issuer: "https://evil.example",
      jwks_uri: `${origin}/k`,
    });
    await expect(discoverJwksUri(`${origin}/c`)).rejects.toThrow(/names issuer https:\/\/evil\.example/);
    documents.set("/.well-known/oauth-authorization-server/d", {
      issuer: `${origin}/d`,
      jwks_uri: "http://keys.example.com/jwks",
    });
    await expect(discoverJwksUri(`${origin}/d`)).rejects.toThrow(/jwks_uri must use https/);
    await expect(discoverJwksUri(`${origin}/none`)).rejects.toThrow(/metadata not found .*HTTP 404/);
  });

  it("a failed discovery fails fast during the cooldown and is retried after it; keys outlive an outage", async () => {
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    const audience = "http://127.0.0.1:1/mcp";
    let clock = 1_000_000;
    const resourceServer = new OAuthResourceServer({ issuer, audience, required_scopes: [] }, () => clock);
    const key = await signingKey("late-key");
    const token = await handMadeToken(key, { iss: issuer, aud: audience });
    const unavailable = { reason: expect.stringMatching(/^signing keys unavailable: authorization server metadata/) };
    const accepted = { method: "oauth", principalId: `oauth:${issuer}#hand-made` };
    await expect(resourceServer.authenticate(token)).rejects.toMatchObject(unavailable);
    const late = await AuthorizationServer.start([key], port);
    try {
      await expect(resourceServer.authenticate(token)).rejects.toMatchObject(unavailable);
      expect(late.requests).toEqual([]);
      clock += 10_000;
      await expect(resourceServer.authenticate(token)).resolves.toMatchObject(accepted);
      expect(late.requests).toEqual(["/.well-known/oauth-authorization-server", "/jwks"]);
    } finally {
      await late.close();
    }
    // The authorization server is gone and the keys are stale: the refetch fails, the keys fetched before still serve.
    clock += 600_000;
    await expect(resourceServer.authenticate(token)).resolves.toMatchObject(accepted);
    const unknown = await handMadeToken(await signingKey("other"), { iss: issuer, aud: audience });
    await expect(resourceServer.authenticate(unknown)).rejects.toMatchObject({ reason: "token signing key unknown" });
  });
});
