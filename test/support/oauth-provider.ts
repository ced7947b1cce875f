import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from "jose";
import Provider from "oidc-provider";

export const SCOPES = ["decision-gate", "decision-gate:read", "decision-gate:write"] as const;
export const CLIENT = { id: "release-agent", secret: "release-agent-secret-0123456789abcdef" };

/** A signing key pair: the private half signs tokens, the public JWK is what the authorization server publishes. */
export interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  privateJwk: JWK;
}

export async function signingKey(kid: string): Promise<SigningKey> {
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  return { kid, privateKey, privateJwk: { ...(await exportJWK(privateKey)), kid, alg: "ES256", use: "sig" } };
}

/** A free loopback port (so a configuration can name its own URL before the server starts). */
export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/**
 * A real OAuth 2.1 authorization server (`oidc-provider`) on a loopback port: one confidential client with the
 * client_credentials grant, JWT access tokens for any resource indicator (RFC 8707), signed with the first of its
 * keys. `rotate` swaps in a new key set, as an authorization server rotating its keys does.
 */
export class AuthorizationServer {
  /** The paths of the requests served, in order. */
  readonly requests: string[] = [];

  private constructor(
    private readonly http: Server,
    readonly issuer: string,
  ) {}

  static async start(keys: readonly SigningKey[], port = 0): Promise<AuthorizationServer> {
    const http = createServer();
    await new Promise<void>((resolve) => http.listen(port, "127.0.0.1", resolve));
    const server = new AuthorizationServer(http, `http://127.0.0.1:${(http.address() as AddressInfo).port}`);
    server.rotate(keys);
    return server;
  }

  /** From now on, tokens are signed with `keys[0]` and the JWKS publishes all of `keys`. */
  rotate(keys: readonly SigningKey[]): void {
    const provider = new Provider(this.issuer, {
      clients: [
        {
          client_id: CLIENT.id,
          client_secret: CLIENT.secret,
          grant_types: ["client_credentials"],
          redirect_uris: [],
          response_types: [],
          scope: SCOPES.join(" "),
          id_token_signed_response_alg: "ES256",
        },
      ],
      jwks: { keys: keys.map((key) => key.privateJwk) },
      scopes: [...SCOPES],
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        resourceIndicators: {
          enabled: true,
          getResourceServerInfo: (_context: unknown, resource: string) => ({
            scope: SCOPES.join(" "),
            audience: resource,
            accessTokenTTL: 300,
            accessTokenFormat: "jwt",
            jwt: { sign: { alg: "ES256" } },
          }),
        },
      },
      ttl: { ClientCredentials: 300 },
    });
    const handle = provider.callback();
    this.http.removeAllListeners("request");
    this.http.on("request", (request, response) => {
      this.requests.push(request.url ?? "");
      handle(request, response);
    });
  }

  requestsTo(path: string): number {
    return this.requests.filter((url) => url === path).length;
  }

  /** A token from the client_credentials grant for `resource` with `scope`. */
  async token(resource: string, scope: string): Promise<string> {
    const response = await fetch(`${this.issuer}/token`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        authorization: `Basic ${Buffer.from(`${CLIENT.id}:${CLIENT.secret}`).toString("base64")}`,
      },
      body: new URLSearchParams({ grant_type: "client_credentials", resource, scope }),
    });
    const body = (await response.json()) as { access_token?: string; error?: string };
    if (body.access_token === undefined) throw new Error(`token request failed: ${JSON.stringify(body)}`);
    return body.access_token;
  }

  close(): Promise<void> {
    this.http.closeAllConnections();
    return new Promise((resolve) => this.http.close(() => resolve()));
  }
}

/** A hand-made access token: `claims` over sensible defaults, signed with `key` (or the header's `alg` as given). */
export async function handMadeToken(
  key: SigningKey,
  claims: JWTPayload,
  header: { alg?: string; kid?: string } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iat: now, exp: now + 300, sub: "hand-made", ...claims })
    .setProtectedHeader({ alg: header.alg ?? "ES256", kid: header.kid ?? key.kid, typ: "at+jwt" })
    .sign(key.privateKey);
}
