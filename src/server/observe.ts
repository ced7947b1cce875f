import type { Logger } from "pino";
import { type AuditLog, auditRequest, boundedName } from "./audit.js";
import { type AuthSettings, type Credentials, clientSubject } from "./auth.js";
import type { CallContext } from "./context.js";
import type { ServerMetrics } from "./metrics.js";

export interface Observers {
  audit: AuditLog;
  metrics: ServerMetrics;
  log: Logger;
  /** Decides which client subject the audit may record as trusted. */
  auth: AuthSettings;
}

/**
 * Records one handled request (the pipeline's last step, src/server/router.ts): its `mcp_request` audit line, its
 * request counter and a `debug` log line. Resolves once the request's audit lines are written, so that they are
 * written before the answer is sent.
 */
export function observeRequest(
  observers: Observers,
  request: Pick<
    CallContext,
    "transport" | "dialect" | "peerIp" | "requestId" | "clientCorrelationId" | "serverCorrelationId"
  > & { credentials: Credentials },
  outcome: Parameters<typeof auditRequest>[2],
): Promise<void> {
  auditRequest(observers.audit, request, outcome, auditedSubject(observers.auth, request.credentials));
  observers.metrics.request({
    dialect: request.dialect,
    method: outcome.method,
    tool: outcome.tool,
    code: outcome.error?.code ?? null,
  });
  // The line's fields are built only when it is written: most servers log at `info`.
  if (observers.log.isLevelEnabled("debug")) {
    observers.log.debug(
      {
        transport: request.transport,
        dialect: request.dialect,
        method: boundedName(outcome.method),
        tool: boundedName(outcome.tool),
        error_kind: outcome.error?.kind ?? null,
        server_correlation_id: request.serverCorrelationId,
      },
      "request handled",
    );
  }
  return observers.audit.flush();
}

/**
 * The caller's subject as the audit records it. Trusted is only the subject authentication relies on, which exists
 * in mTLS mode alone (D6); a subject header the server did not rely on (any header in the other modes, or one
 * sent beside a verified certificate or from an untrusted peer) is recorded apart, as untrusted.
 */
function auditedSubject(auth: AuthSettings, credentials: Credentials) {
  const trusted = auth.mode === "mtls" ? clientSubject(auth, credentials) : null;
  const header = credentials.subjectHeader;
  return { trusted, untrusted: header !== null && header !== trusted ? header : null };
}
