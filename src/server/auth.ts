import { createHash, timingSafeEqual } from "node:crypto";
import { isLoopbackAddress } from "../config/schema.js";
import { AccessDeniedError } from "../core/errors.js";
import { type AuthContext, LOCAL_LOOPBACK, LOCAL_STDIO, type TransportName } from "./context.js";

/** `[server.auth]`, with bearer tokens held only as their sha256 digests. */
export interface AuthSettings {
  mode: "local_only" | "bearer_token" | "mtls";
  bearerTokenDigests: readonly Buffer[];
  mtlsSubjects: readonly string[];
  allowedTools: readonly string[];
}

/** What a transport knows about the caller. Transports collect it; this module decides. */
export interface Credentials {
  transport: TransportName;
  peerIp: string | null;
  authorization: string | null;
  clientSubject: string | null;
}

const MAX_AUTHORIZATION_BYTES = 8192;

export function authSettings(config: {
  mode: AuthSettings["mode"];
  bearer_tokens: readonly string[];
  mtls_subjects: readonly string[];
  allowed_tools: readonly string[];
}): AuthSettings {
  return {
    mode: config.mode,
    bearerTokenDigests: config.bearer_tokens.map(sha256),
    mtlsSubjects: config.mtls_subjects,
    allowedTools: config.allowed_tools,
  };
}

/** Establishes who the caller is (interface §4.1), or throws `unauthenticated`/`unauthorized`. */
export function authenticate(settings: AuthSettings, credentials: Credentials): AuthContext {
  if (credentials.transport === "stdio") return LOCAL_STDIO;
  switch (settings.mode) {
    case "local_only":
      if (credentials.peerIp !== null && isLoopbackAddress(credentials.peerIp)) return LOCAL_LOOPBACK;
      throw new AccessDeniedError("unauthenticated", "local-only mode requires loopback access");
    case "bearer_token":
      return bearerAuth(settings, credentials.authorization);
    case "mtls":
      return subjectAuth(settings, credentials.clientSubject);
  }
}

function bearerAuth(settings: AuthSettings, header: string | null): AuthContext {
  if (header === null) throw new AccessDeniedError("unauthenticated", "missing bearer token");
  if (Buffer.byteLength(header) > MAX_AUTHORIZATION_BYTES) {
    throw new AccessDeniedError("unauthenticated", "authorization header too large");
  }
  const [scheme, ...rest] = header.trim().split(" ");
  const token = rest.join(" ").trim();
  if (scheme?.toLowerCase() !== "bearer" || token.length === 0) {
    throw new AccessDeniedError("unauthenticated", "malformed authorization header");
  }
  const digest = sha256(token);
  // Compare with every configured digest, so timing reveals neither the match nor its position.
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

/** `allowed_tools`: a non-empty list admits only its tools. */
export function authorizeTool(settings: AuthSettings, tool: string): void {
  if (settings.allowedTools.length > 0 && !settings.allowedTools.includes(tool)) {
    throw new AccessDeniedError("unauthorized", "tool not authorized");
  }
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}
