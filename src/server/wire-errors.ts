import { AccessDeniedError, BearerTokenError, DecisionGateError, type ErrorKind, LimitError } from "../core/errors.js";

/** The JSON-RPC side of an error: what every dialect sends for it (interface §2.3). */
export interface WireError {
  code: number;
  kind: ErrorKind | "unknown";
  message: string;
  retryable: boolean;
  httpStatus: number;
  retryAfterMs?: number;
  /** The stable fine-grained code of the error hierarchy. */
  errorCode: string;
  /** For the audit log only: why access was denied. Never sent to the caller. */
  auditReason?: string;
  /** An OAuth token refusal: the RFC 6750 error code (and missing scope) of the `WWW-Authenticate` challenge. */
  bearer?: { error: "invalid_token" | "insufficient_scope"; scope?: string };
}

const TABLE: Record<ErrorKind, { code: number; httpStatus: number }> = {
  invalid_request: { code: -32600, httpStatus: 400 },
  method_not_found: { code: -32601, httpStatus: 400 },
  invalid_params: { code: -32602, httpStatus: 400 },
  unauthenticated: { code: -32001, httpStatus: 401 },
  unauthorized: { code: -32003, httpStatus: 403 },
  not_found: { code: -32004, httpStatus: 200 },
  conflict: { code: -32009, httpStatus: 200 },
  evidence: { code: -32020, httpStatus: 200 },
  control_plane: { code: -32030, httpStatus: 200 },
  runpack: { code: -32040, httpStatus: 200 },
  internal: { code: -32050, httpStatus: 200 },
  serialization: { code: -32060, httpStatus: 200 },
  request_too_large: { code: -32070, httpStatus: 413 },
  rate_limited: { code: -32071, httpStatus: 429 },
  inflight_limit: { code: -32072, httpStatus: 503 },
  invalid_correlation_id: { code: -32073, httpStatus: 400 },
};

/** Errors whose HTTP status is not their kind's: the tool-level form of a transport error, or a finer status. */
const HTTP_STATUS_BY_CODE: Record<string, number> = {
  discovery_response_too_large: 200,
  unsupported_media_type: 415,
  host_not_allowed: 421,
};

/** Maps any thrown value to its wire form. This is the only place that knows codes and statuses. */
export function toWireError(error: unknown): WireError {
  if (!(error instanceof DecisionGateError)) {
    return {
      code: -32050,
      kind: "internal",
      message: "internal error",
      retryable: false,
      httpStatus: 200,
      errorCode: "internal",
    };
  }
  const { code, httpStatus } = TABLE[error.kind];
  const wire: WireError = {
    code,
    kind: error.kind,
    message: error.message,
    retryable: error.kind === "rate_limited" || error.kind === "inflight_limit",
    httpStatus: HTTP_STATUS_BY_CODE[error.code] ?? httpStatus,
    errorCode: error.code,
  };
  if (error instanceof LimitError && error.retryAfterMs !== undefined) wire.retryAfterMs = error.retryAfterMs;
  if (error instanceof AccessDeniedError) wire.auditReason = error.reason;
  if (error instanceof BearerTokenError) {
    wire.bearer = { error: error.bearerError, ...(error.scope === undefined ? {} : { scope: error.scope }) };
  }
  return wire;
}
