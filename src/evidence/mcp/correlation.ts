import { EvidenceProviderFailure } from "../provider.js";

export const MAX_CORRELATION_ID_BYTES = 128;

/** Rust's `str::trim` strips Unicode `White_Space`, which differs from JavaScript's `trim` (U+0085, U+FEFF). */
const RUST_WHITESPACE = "\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const EDGE_WHITESPACE = new RegExp(`^[${RUST_WHITESPACE}]+|[${RUST_WHITESPACE}]+$`, "g");

/** RFC 7230 `tchar`: ASCII letters and digits plus ``! # $ % & ' * + - . ^ _ ` | ~``. */
const TOKEN = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/;

/**
 * A client correlation id as the reference accepts it (evidence §2.2): trimmed, non-empty, at most 128 bytes and
 * made of HTTP token characters only. `null` stays `null`; anything else invalid fails the query.
 */
export function sanitizeCorrelationId(id: string | null): string | null {
  if (id === null) return null;
  const trimmed = id.replace(EDGE_WHITESPACE, "");
  const valid = Buffer.byteLength(trimmed, "utf8") <= MAX_CORRELATION_ID_BYTES && TOKEN.test(trimmed);
  if (!valid) throw new EvidenceProviderFailure("invalid correlation id");
  return trimmed;
}
