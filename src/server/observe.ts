import type { Logger } from "pino";
import { type AuditLog, auditRequest } from "./audit.js";
import type { CallContext } from "./context.js";
import type { ServerMetrics } from "./metrics.js";

export interface Observers {
  audit: AuditLog;
  metrics: ServerMetrics;
  log: Logger;
}

/**
 * Records one handled request: its `mcp_request` audit line, its request counter and a `debug` log line. Resolves
 * once the request's audit lines are written; transports await it before sending the response.
 */
export function observeRequest(
  observers: Observers,
  request: Pick<
    CallContext,
    "transport" | "dialect" | "peerIp" | "requestId" | "clientCorrelationId" | "serverCorrelationId"
  >,
  outcome: Parameters<typeof auditRequest>[2],
): Promise<void> {
  auditRequest(observers.audit, request, outcome);
  observers.metrics.request({
    dialect: request.dialect,
    method: outcome.method,
    tool: outcome.tool,
    code: outcome.error?.code ?? null,
  });
  observers.log.debug(
    {
      transport: request.transport,
      dialect: request.dialect,
      method: outcome.method,
      tool: outcome.tool,
      error_kind: outcome.error?.kind ?? null,
      server_correlation_id: request.serverCorrelationId,
    },
    "request handled",
  );
  return observers.audit.flush();
}
