/**
 * The one error hierarchy of Decision Gate. Its root, `DecisionGateError` (with its `kind`, `code`, `message` and
 * `details`), and JSON's own errors live in src/json/errors.ts, the lowest layer; they are re-exported here, so
 * this file is where every typed error is found.
 */
import { DecisionGateError, type ErrorDetails } from "../json/errors.js";

export {
  DecisionGateError,
  type ErrorDetails,
  type ErrorKind,
  HashError,
  JsonParseError,
} from "../json/errors.js";

/** A message that is not a usable request at all: not JSON-RPC, or an unreadable frame. */
export class InvalidRequestError extends DecisionGateError {
  constructor(message: string) {
    super("invalid_request", "invalid_request", message);
  }
}

/** A value that does not have the shape a wire type requires; the message names the offending field. */
export class InvalidInputError extends DecisionGateError {
  constructor(message: string, details?: ErrorDetails) {
    super("invalid_params", "invalid_input", message, details);
  }
}

/** One problem found while validating a scenario spec. */
export interface SpecProblem {
  /** Stable identifier of the rule that failed, e.g. `duplicate_stage_id`. */
  readonly code: string;
  /** Location inside the spec, e.g. `stages[1].gates[0].requirement`. */
  readonly path: string;
  readonly message: string;
}

/**
 * A scenario spec failed definition-time validation. The message starts with the first problem exactly as the
 * reference words it; every problem found is listed in the message and in `details.problems`.
 */
export class SpecInvalidError extends DecisionGateError {
  readonly problems: readonly SpecProblem[];

  constructor(problems: readonly SpecProblem[]) {
    super("control_plane", "spec_invalid", `invalid scenario spec: ${problems.map((p) => p.message).join("; ")}`, {
      problems: problems.map((p) => ({ ...p })),
    });
    this.problems = problems;
  }
}

/** A refusal or failure of the control plane; messages follow the reference's `ControlPlaneError` texts. */
export class ControlPlaneError extends DecisionGateError {
  constructor(code: string, message: string, details?: ErrorDetails) {
    super("control_plane", code, message, details);
  }
}

/** A request that contradicts what is already recorded (same id, different content). */
export class ConflictError extends DecisionGateError {
  constructor(code: string, message: string, details?: ErrorDetails) {
    super("conflict", code, message, details);
  }
}

export class NotFoundError extends DecisionGateError {
  constructor(code: string, message: string, details?: ErrorDetails) {
    super("not_found", code, message, details);
  }
}

/** A runpack could not be built, read or written. */
export class RunpackError extends DecisionGateError {
  constructor(code: string, message: string, details?: ErrorDetails) {
    super("runpack", code, message, details);
  }
}

/** An unknown method, or a tool that does not exist or is hidden from the caller. */
export class MethodNotFoundError extends DecisionGateError {
  constructor(message: "method not found" | "unknown tool") {
    super("method_not_found", message === "unknown tool" ? "unknown_tool" : "method_not_found", message);
  }
}

/**
 * The caller could not be identified (`unauthenticated`) or may not do this (`unauthorized`). The wire shows only
 * the generic word; `reason` says why, for the audit log.
 */
export class AccessDeniedError extends DecisionGateError {
  readonly reason: string;

  constructor(kind: "unauthenticated" | "unauthorized", reason: string) {
    super(kind, kind, kind);
    this.reason = reason;
  }
}

/**
 * An OAuth access token that does not authenticate (`invalid_token`: 401) or lacks the scope a call needs
 * (`insufficient_scope`: 403), answered with the RFC 6750 error code and, for a scope, the scope to ask for.
 */
export class BearerTokenError extends AccessDeniedError {
  readonly bearerError: "invalid_token" | "insufficient_scope";
  readonly scope: string | undefined;

  constructor(bearerError: "invalid_token", reason: string);
  constructor(bearerError: "insufficient_scope", reason: string, scope: string);
  constructor(bearerError: "invalid_token" | "insufficient_scope", reason: string, scope?: string) {
    super(bearerError === "invalid_token" ? "unauthenticated" : "unauthorized", reason);
    this.bearerError = bearerError;
    this.scope = scope;
  }
}

/** A limit refused the request before it ran: body size, rate, or concurrency. */
export class LimitError extends DecisionGateError {
  readonly retryAfterMs: number | undefined;

  constructor(kind: "request_too_large" | "rate_limited" | "inflight_limit", message: string, retryAfterMs?: number) {
    super(kind, kind, message);
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * A request a web page on another site could have sent (D17): an `Origin` that is not the server's own or an
 * allowed one, or a `Host` the server does not answer to (DNS rebinding). Refused before any tool runs.
 */
export class ForeignRequestError extends DecisionGateError {
  constructor(code: "origin_not_allowed" | "host_not_allowed", message: string) {
    super("unauthorized", code, message);
  }
}

/** A request body that is not `application/json`, the one type a cross-site page cannot send without asking (D17). */
export class UnsupportedMediaTypeError extends DecisionGateError {
  constructor(message: string) {
    super("invalid_request", "unsupported_media_type", message);
  }
}

/**
 * The store could not commit for lack of space (disk full): nothing was recorded, so the same call may be sent
 * again. Answered as the reference's one retryable server-side condition, `-32072` (HTTP 503, `retryable: true`).
 */
export class StorageFullError extends DecisionGateError {
  constructor(message: string, details?: ErrorDetails) {
    super("inflight_limit", "storage_full", message, details);
  }
}

/**
 * The store's database cannot be reached right now (connection refused or lost, timed out, shutting down): the
 * call may be sent again. Answered like `StorageFullError` (`-32072`, HTTP 503, `retryable: true`); a retried
 * trigger is answered idempotently by its `trigger_id`, whether or not its first attempt was recorded.
 */
export class StoreUnavailableError extends DecisionGateError {
  constructor(message: string, details?: ErrorDetails) {
    super("inflight_limit", "store_unavailable", message, details);
  }
}

/** A broken invariant: a bug, never the caller's fault. */
export class InternalError extends DecisionGateError {
  constructor(message: string, details?: ErrorDetails) {
    super("internal", "internal", message, details);
  }
}
