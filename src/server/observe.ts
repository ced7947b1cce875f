import { type AuditLog, auditRequest } from "./audit.js";
import type { CallContext } from "./context.js";
import type { ServerMetrics } from "./metrics.js";

export interface Observers {
  audit: AuditLog;
  metrics: ServerMetrics;
}

/** Records one handled request: its `mcp_request` audit line and its request counter. */
export function observeRequest(
  observers: Observers,
  request: Pick<
    CallContext,
    "transport" | "dialect" | "peerIp" | "requestId" | "clientCorrelationId" | "serverCorrelationId"
  >,
  outcome: Parameters<typeof auditRequest>[2],
): void {
  auditRequest(observers.audit, request, outcome);
  observers.metrics.request({
    dialect: request.dialect,
    method: outcome.method,
    tool: outcome.tool,
    code: outcome.error?.code ?? null,
  });
}
