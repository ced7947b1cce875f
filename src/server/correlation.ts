import { randomBytes } from "node:crypto";
import { DecisionGateError } from "../core/errors.js";

/** Server correlation ids `dg-<boot id>-<counter>`, both as 16 hex digits (interface §2.6). */
export class ServerCorrelationIds {
  private readonly boot = randomBytes(8).toString("hex");
  private counter = 0n;

  next(): string {
    this.counter += 1n;
    return `dg-${this.boot}-${this.counter.toString(16).padStart(16, "0")}`;
  }
}

const MAX_CLIENT_CORRELATION_ID_BYTES = 128;
const TCHAR = /^[A-Za-z0-9!#$%&'*+.^_`|~-]$/;

/** An `x-correlation-id` that breaks the token rules; `label` names the rule for the security audit. */
export class InvalidCorrelationIdError extends DecisionGateError {
  constructor(readonly label: string) {
    super("invalid_correlation_id", "invalid_correlation_id", "invalid correlation id");
  }
}

/** Checks a client's `x-correlation-id` (trimmed, ≤128 bytes, HTTP token characters) and returns it trimmed. */
export function sanitizeClientCorrelationId(header: string): string {
  const value = header.trim();
  if (value.length === 0) throw new InvalidCorrelationIdError("empty_after_trim");
  if (Buffer.byteLength(value) > MAX_CLIENT_CORRELATION_ID_BYTES) throw new InvalidCorrelationIdError("too_long");
  for (const char of value) {
    const code = char.codePointAt(0) ?? 0;
    if (code > 0x7e) throw new InvalidCorrelationIdError("non_ascii");
    if (/\s/.test(char)) throw new InvalidCorrelationIdError("contains_whitespace");
    if (code < 0x20 || code === 0x7f) throw new InvalidCorrelationIdError("contains_control_char");
    if (!TCHAR.test(char)) throw new InvalidCorrelationIdError("contains_disallowed_char");
  }
  return value;
}
