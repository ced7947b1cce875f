import { createHash } from "node:crypto";
import { type JWTPayload, jwtVerify } from "jose";
import type { AuthConfig } from "../../config/schema.js";
import { AccessDeniedError, BearerTokenError } from "../../core/errors.js";
import type { AuthContext } from "../context.js";
import type { WireError } from "../wire-errors.js";
import { discoverJwksUri } from "./discovery.js";
import { KeySet, KeySetUnavailableError } from "./key-set.js";

/** `[server.auth.oauth]`. */
export type OAuthConfig = NonNullable<AuthConfig["oauth"]>;

/** Asymmetric signatures only: never `none`, and never HMAC, whose "secret" would be the public key. */
const ALLOWED_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"];
const CLOCK_TOLERANCE_SECONDS = 30;
const KEY_SET_TIMING = { cooldownMs: 10_000, maxAgeMs: 600_000 };

export const PROTECTED_RESOURCE_METADATA_PATH = "/.well-known/oauth-protected-resource";

/** RFC 9728 protected-resource metadata. */
export interface ProtectedResourceMetadata {
  resource: string;
  authorization_servers: string[];
  scopes_supported: string[];
  bearer_methods_supported: ["header"];
}

/**
 * The OAuth 2.1 resource server of `mode = "oauth"`: validates JWT access tokens against the authorization server's
 * key set (see `KeySet`), maps the token's scopes to tools, and words the `WWW-Authenticate` challenges that point
 * clients to the protected-resource metadata.
 */
export class OAuthResourceServer {
  private readonly keySet: KeySet;
  private jwksUri: string | undefined;

  /** `now` is the clock the key set's cache ages by (tests move it). */
  constructor(
    private readonly config: OAuthConfig,
    now: () => number = Date.now,
  ) {
    this.jwksUri = config.jwks_uri;
    this.keySet = new KeySet(() => this.locateKeys(), { ...KEY_SET_TIMING, now });
  }

  /** Where this server's RFC 9728 metadata is published, derived from the configured resource URI. */
  get metadataUrl(): string {
    const resource = new URL(this.config.audience);
    return `${resource.origin}${PROTECTED_RESOURCE_METADATA_PATH}${resourcePath(resource)}`;
  }

  /** The paths the metadata is served at: the plain well-known path, and its `/mcp` and resource-path forms. */
  get metadataPaths(): string[] {
    const suffixes = ["", "/mcp", resourcePath(new URL(this.config.audience))];
    return [...new Set(suffixes)].map((suffix) => `${PROTECTED_RESOURCE_METADATA_PATH}${suffix}`);
  }

  metadata(): ProtectedResourceMetadata {
    const { required_scopes, read_scope, write_scope } = this.config;
    const scopes = [...required_scopes, read_scope, write_scope].filter((scope) => scope !== undefined);
    return {
      resource: this.config.audience,
      authorization_servers: [this.config.issuer],
      scopes_supported: [...new Set(scopes)],
      bearer_methods_supported: ["header"],
    };
  }

  /** Who the access token proves the caller to be; throws `invalid_token` or, without a required scope, 403. */
  async authenticate(token: string): Promise<AuthContext> {
    if (token.split(".").length !== 3) throw new BearerTokenError("invalid_token", "access token is not a JWT");
    const payload = await this.verify(token);
    const scopes = scopesOf(payload);
    const missing = this.config.required_scopes.filter((scope) => !scopes.includes(scope));
    if (missing.length > 0) {
      throw new BearerTokenError(
        "insufficient_scope",
        `token lacks required scope ${missing.join(" ")}`,
        this.config.required_scopes.join(" "),
      );
    }
    const principalId = `oauth:${this.config.issuer}#${payload.sub}`;
    const fingerprint = createHash("sha256").update(token, "utf8").digest("hex");
    return { method: "oauth", subject: principalId, tokenFingerprint: fingerprint, principalId, scopes };
  }

  /**
   * The scope check of one tool (on top of `allowed_tools`): `read_scope` or `write_scope` admits a tool annotated
   * read-only, `write_scope` any other; an unset scope requires nothing. Callers that are not OAuth callers pass.
   */
  authorizeScope(auth: AuthContext, readOnly: boolean): void {
    if (auth.scopes === undefined) return;
    const { read_scope, write_scope } = this.config;
    const needed = readOnly ? read_scope : write_scope;
    if (needed === undefined) return;
    const accepted = readOnly ? [needed, write_scope] : [needed];
    if (accepted.some((scope) => scope !== undefined && auth.scopes?.includes(scope))) return;
    const ask = [...new Set([...this.config.required_scopes, needed])].join(" ");
    throw new BearerTokenError("insufficient_scope", `token lacks scope ${needed}`, ask);
  }

  /**
   * The `WWW-Authenticate` header for a refusal (RFC 6750 §3, RFC 9728 §5.1): every 401 names the metadata, with
   * `error="invalid_token"` when a token was sent and refused; a 403 for a missing scope names the scope to ask for.
   */
  challenge(error: WireError | null): string | null {
    const bearer = error?.bearer;
    if (error?.kind !== "unauthenticated" && bearer?.error !== "insufficient_scope") return null;
    const params: string[] = [];
    if (bearer !== undefined) params.push(`error="${bearer.error}"`);
    if (bearer?.scope !== undefined) params.push(`scope="${bearer.scope}"`);
    params.push(`resource_metadata="${this.metadataUrl}"`);
    return `Bearer ${params.join(", ")}`;
  }

  /** The key set's address; a discovered one is kept once found, a failed discovery is retried with the next fetch. */
  private async locateKeys(): Promise<string> {
    this.jwksUri ??= await discoverJwksUri(this.config.issuer);
    return this.jwksUri;
  }

  private async verify(token: string): Promise<JWTPayload> {
    try {
      const { payload } = await jwtVerify(token, this.keySet.getKey, {
        issuer: this.config.issuer,
        audience: this.config.audience,
        algorithms: ALLOWED_ALGORITHMS,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        requiredClaims: ["exp", "sub"],
      });
      return payload;
    } catch (error) {
      throw tokenRefusal(error);
    }
  }
}

/** The path of the resource URI without a final slash (`""` for the root), as RFC 9728 §3.1 appends it. */
function resourcePath(resource: URL): string {
  return resource.pathname.replace(/\/+$/, "");
}

/** The token's scopes: `scope` (RFC 9068, space-separated), or `scp` as some authorization servers write it. */
function scopesOf(payload: JWTPayload): string[] {
  const claim = payload.scope ?? payload.scp;
  if (typeof claim === "string") return claim.split(" ").filter((scope) => scope.length > 0);
  if (Array.isArray(claim)) return claim.filter((scope): scope is string => typeof scope === "string");
  return [];
}

/** Why the token was refused, for the audit log; the caller sees only `invalid_token`. No token text is kept. */
function tokenRefusal(error: unknown): AccessDeniedError {
  if (error instanceof KeySetUnavailableError) {
    return new AccessDeniedError("unauthenticated", `signing keys unavailable: ${error.message}`);
  }
  const { code, claim } = error as { code?: string; claim?: string };
  switch (code) {
    case "ERR_JWT_EXPIRED":
      return new BearerTokenError("invalid_token", "token expired");
    case "ERR_JWT_CLAIM_VALIDATION_FAILED":
      return new BearerTokenError("invalid_token", claim === "nbf" ? "token not yet valid" : `token ${claim} rejected`);
    case "ERR_JOSE_ALG_NOT_ALLOWED":
    case "ERR_JOSE_NOT_SUPPORTED":
      return new BearerTokenError("invalid_token", "token algorithm not allowed");
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
      return new BearerTokenError("invalid_token", "token signature invalid");
    case "ERR_JWKS_NO_MATCHING_KEY":
    case "ERR_JWKS_MULTIPLE_MATCHING_KEYS":
      return new BearerTokenError("invalid_token", "token signing key unknown");
    default:
      return code === undefined
        ? new AccessDeniedError("unauthenticated", "token verification failed")
        : new BearerTokenError("invalid_token", "malformed token");
  }
}
