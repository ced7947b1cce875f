import { createHash, timingSafeEqual } from "node:crypto";
import { type BlockList, isIP } from "node:net";
import { AccessDeniedError, InternalError } from "../core/errors.js";
import { isLoopbackAddress, networkBlockList } from "../net/address.js";
import { type AuthContext, LOCAL_LOOPBACK, LOCAL_STDIO, type TransportName } from "./context.js";
import { type OAuthConfig, OAuthResourceServer } from "./oauth/resource-server.js";

/** `[server.auth]` and the TLS facts authentication depends on; bearer tokens only as their sha256 digests. */
export interface AuthSettings {
  mode: "local_only" | "bearer_token" | "mtls" | "oauth";
  bearerTokenDigests: readonly Buffer[];
  /** `mode = "oauth"`: the resource server that validates access tokens. */
  oauth: OAuthResourceServer | null;
  mtlsSubjects: readonly string[];
  allowedTools: readonly string[];
  /** TLS terminates in this process: client identity comes from the verified certificate only (D6). */
  tlsInProcess: boolean;
  /** A proxy terminates TLS and passes the client subject in `x-decision-gate-client-subject`. */
  upstreamTermination: boolean;
  /** With upstream termination: the peers whose subject header is believed; empty means any peer. */
  trustedProxies: BlockList | null;
}

/** What a transport knows about the caller. Transports collect it; this module decides what it proves. */
export interface Credentials {
  transport: TransportName;
  peerIp: string | null;
  authorization: string | null;
  /** The `x-decision-gate-client-subject` header, as sent (possibly spoofed). */
  subjectHeader: string | null;
  /** The subject of a client certificate that the TLS handshake verified. */
  certificateSubject: string | null;
}

const MAX_AUTHORIZATION_BYTES = 8192;

export interface AuthConfigInput {
  auth: {
    mode: AuthSettings["mode"];
    bearer_tokens: readonly string[];
    mtls_subjects: readonly string[];
    allowed_tools: readonly string[];
    oauth?: OAuthConfig;
  };
  tlsInProcess: boolean;
  tls_termination: "server" | "upstream";
  trusted_proxies?: readonly string[];
}

export function authSettings(config: AuthConfigInput): AuthSettings {
  const proxies = config.trusted_proxies ?? [];
  return {
    mode: config.auth.mode,
    bearerTokenDigests: config.auth.bearer_tokens.map(sha256),
    oauth:
      config.auth.mode === "oauth" && config.auth.oauth !== undefined
        ? new OAuthResourceServer(config.auth.oauth)
        : null,
    mtlsSubjects: config.auth.mtls_subjects,
    allowedTools: config.auth.allowed_tools,
    tlsInProcess: config.tlsInProcess,
    upstreamTermination: config.tls_termination === "upstream",
    trustedProxies: proxies.length === 0 ? null : networkBlockList(proxies),
  };
}

/** Establishes who the caller is (interface §4.1, D6, D7), or throws `unauthenticated`/`unauthorized`. */
export async function authenticate(settings: AuthSettings, credentials: Credentials): Promise<AuthContext> {
  if (credentials.transport === "stdio") return LOCAL_STDIO;
  switch (settings.mode) {
    case "local_only":
      if (credentials.peerIp !== null && isLoopbackAddress(credentials.peerIp)) return LOCAL_LOOPBACK;
      throw new AccessDeniedError("unauthenticated", "local-only mode requires loopback access");
    case "bearer_token":
      return bearerAuth(settings, credentials.authorization);
    case "mtls":
      return subjectAuth(settings, clientSubject(settings, credentials));
    case "oauth":
      if (settings.oauth === null) throw new InternalError("oauth mode without [server.auth.oauth]");
      return settings.oauth.authenticate(bearerToken(credentials.authorization));
  }
}

/**
 * The client subject that counts (D6): with in-process TLS, only the verified certificate's; with upstream
 * termination, the header, and only from a trusted proxy when proxies are configured; otherwise none.
 */
export function clientSubject(settings: AuthSettings, credentials: Credentials): string | null {
  if (settings.tlsInProcess) return credentials.certificateSubject;
  if (!settings.upstreamTermination) return null;
  const peer = credentials.peerIp;
  if (settings.trustedProxies !== null) {
    const family = peer === null ? 0 : isIP(peer);
    if (peer === null || family === 0 || !settings.trustedProxies.check(peer, family === 4 ? "ipv4" : "ipv6"))
      return null;
  }
  return credentials.subjectHeader;
}

/** The token of an `Authorization: Bearer <token>` header. */
function bearerToken(header: string | null): string {
  if (header === null) throw new AccessDeniedError("unauthenticated", "missing bearer token");
  if (Buffer.byteLength(header) > MAX_AUTHORIZATION_BYTES) {
    throw new AccessDeniedError("unauthenticated", "authorization header too large");
  }
  const [scheme, ...rest] = header.trim().split(" ");
  const token = rest.join(" ").trim();
  if (scheme?.toLowerCase() !== "bearer" || token.length === 0) {
    throw new AccessDeniedError("unauthenticated", "malformed authorization header");
  }
  return token;
}

function bearerAuth(settings: AuthSettings, header: string | null): AuthContext {
  const digest = sha256(bearerToken(header));
  // Compare with every configured digest, so timing reveals neither the match nor its position (D7).
  const matched = settings.bearerTokenDigests.reduce((found, known) => timingSafeEqual(known, digest) || found, false);
  if (!matched) throw new AccessDeniedError("unauthenticated", "invalid bearer token");
  const fingerprint = digest.toString("hex");
  return { method: "bearer_token", subject: null, tokenFingerprint: fingerprint, principalId: `token:${fingerprint}` };
}

function subjectAuth(settings: AuthSettings, subject: string | null): AuthContext {
  if (subject === null || subject.length === 0)
    throw new AccessDeniedError("unauthenticated", "missing client subject");
  if (settings.mtlsSubjects.length > 0 && !settings.mtlsSubjects.includes(subject)) {
    throw new AccessDeniedError("unauthorized", "mtls subject not allowed");
  }
  return { method: "mtls_subject", subject, tokenFingerprint: null, principalId: subject };
}

/** `allowed_tools` (a non-empty list admits only its tools), then an OAuth caller's scopes (`insufficient_scope`). */
export function authorizeTool(
  settings: AuthSettings,
  tool: { name: string; readOnly: boolean },
  auth: AuthContext,
): void {
  if (settings.allowedTools.length > 0 && !settings.allowedTools.includes(tool.name)) {
    throw new AccessDeniedError("unauthorized", "tool not authorized");
  }
  settings.oauth?.authorizeScope(auth, tool.readOnly);
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}
