/**
 * The root of Decision Gate's one error hierarchy and the two errors JSON itself raises. They sit here, in the
 * lowest layer, so that a JSON failure is a typed error like any other without this folder importing core;
 * src/core/errors.ts re-exports them and holds the rest of the hierarchy. Every rejection is a
 * `DecisionGateError` with:
 * - `kind`: the wire category (mapped to JSON-RPC codes and HTTP statuses in one place, by the server);
 * - `code`: a stable, fine-grained identifier that clients and tests may match on;
 * - `message`: the human text (the reference's exact text where one exists);
 * - `details`: optional structured data, never secrets.
 */
export type ErrorKind =
  | "invalid_request"
  | "method_not_found"
  | "invalid_params"
  | "unauthenticated"
  | "unauthorized"
  | "not_found"
  | "conflict"
  | "evidence"
  | "control_plane"
  | "runpack"
  | "internal"
  | "serialization"
  | "request_too_large"
  | "rate_limited"
  | "inflight_limit"
  | "invalid_correlation_id";

export type ErrorDetails = Record<string, unknown>;

export class DecisionGateError extends Error {
  readonly kind: ErrorKind;
  readonly code: string;
  readonly details: ErrorDetails | undefined;

  constructor(kind: ErrorKind, code: string, message: string, details?: ErrorDetails) {
    super(message);
    this.name = new.target.name;
    this.kind = kind;
    this.code = code;
    this.details = details;
  }
}

/** Text that is not JSON (or not within the parser's limits). */
export class JsonParseError extends DecisionGateError {
  constructor(message: string) {
    super("invalid_request", "json_invalid", message);
  }
}

/** Canonicalization or hashing could not be done (non-finite float, size limit). */
export class HashError extends DecisionGateError {
  constructor(code: "non_finite_float" | "size_limit_exceeded", message: string, details?: ErrorDetails) {
    super("control_plane", code, message, details);
  }
}
