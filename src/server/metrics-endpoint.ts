import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { authenticate, authSettings } from "./auth.js";
import { refusalAnswer } from "./dialects/dg-rpc.js";
import { createListener, credentialsOf, type ListenerSettings } from "./listener.js";
import type { ServerMetrics } from "./metrics.js";

/** `[server.metrics]`: the token `/metrics` requires, if any. */
export interface MetricsSettings {
  bearerToken?: string;
}

export const BEARER_CHALLENGE = 'Bearer realm="decision-gate"';

/** `GET /metrics`, behind `Authorization: Bearer <token>` (compared as bearer tokens are, D7) when one is set. */
export function serveMetrics(app: FastifyInstance, metrics: ServerMetrics, settings: MetricsSettings): void {
  const token = settings.bearerToken;
  const auth =
    token === undefined
      ? null
      : authSettings({
          auth: { mode: "bearer_token", bearer_tokens: [token], mtls_subjects: [], allowed_tools: [] },
          tlsInProcess: false,
          tls_termination: "server",
        });
  app.get("/metrics", async (request, reply) => {
    if (auth !== null) await authenticate(auth, credentialsOf(request, "http"));
    return reply.type(metrics.contentType).send(await metrics.text());
  });
}

/**
 * The listener of `[server.metrics] bind`: `/metrics` alone, over plain HTTP, with the main listener's timeouts,
 * connection bound and `Host`/`Origin` checks. Refusals are JSON-RPC error bodies, as on the main listener.
 */
export function createMetricsApp(
  settings: Omit<ListenerSettings, "https"> & { metrics: MetricsSettings },
  observers: { metrics: ServerMetrics; log: Logger },
): FastifyInstance {
  const { app, guard } = createListener(settings, observers.log);
  app.addHook("onRequest", async (request) => guard.checkSource(request.headers));
  app.setErrorHandler(async (error, _request, reply) => {
    const answer = refusalAnswer(error);
    if (answer.error?.kind === "unauthenticated") reply.header("www-authenticate", BEARER_CHALLENGE);
    return reply.code(answer.httpStatus).type("application/json").send(answer.text);
  });
  serveMetrics(app, observers.metrics, settings.metrics);
  return app;
}
