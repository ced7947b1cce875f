import type { IncomingHttpHeaders } from "node:http";
import type { Socket } from "node:net";
import { TLSSocket } from "node:tls";
import Fastify, { type FastifyInstance, type FastifyRequest } from "fastify";
import type { Logger } from "pino";
import type { Credentials } from "./auth.js";
import { SilentConnections, UnauthenticatedConnections } from "./connections.js";
import { RequestGuard, type RequestGuardSettings } from "./request-guard.js";

/** `[server.limits]`: how long a client may take to send a request, and its connections before it authenticates. */
export interface ConnectionSettings {
  headerTimeoutMs: number;
  /** The whole request, headers and body: what bounds a body trickled a byte at a time. */
  requestTimeoutMs: number;
  idleTimeoutMs: number;
  maxUnauthenticatedPerPeer: number;
}

export interface ListenerSettings {
  maxBodyBytes: number;
  connections: ConnectionSettings;
  /** D17: which `Host` and `Origin` headers are answered. */
  guard: RequestGuardSettings;
  https?: { key: Buffer; cert: Buffer; ca?: Buffer; requestCert: boolean; rejectUnauthorized: boolean };
}

/** A Fastify instance and the connection-level controls its routes use. */
export interface Listener {
  app: FastifyInstance;
  connections: UnauthenticatedConnections;
  guard: RequestGuard;
}

/** Requests with larger headers are refused (431) before they reach any handler. */
const MAX_HEADER_BYTES = 16_384;

/**
 * What every HTTP listener shares: the header, whole-request and keep-alive timeouts (a request whose headers or
 * body trickle in is answered 408 and closed once its time is up, whatever pace it keeps), the header size limit,
 * and the bound on each peer's unauthenticated connections. The `Host`/`Origin` guard is for the routes to run.
 */
export function createListener(settings: ListenerSettings, log: Logger): Listener {
  const limits = settings.connections;
  const server = {
    maxHeaderSize: MAX_HEADER_BYTES,
    headersTimeout: limits.headerTimeoutMs,
    // Node checks both timeouts on this period: a quarter of the header timeout, so closing is at most 25% late.
    connectionsCheckingInterval: Math.min(1000, Math.max(25, Math.floor(limits.headerTimeoutMs / 4))),
  };
  const app = Fastify({
    bodyLimit: settings.maxBodyBytes,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.idleTimeoutMs,
    ...(settings.https
      ? { https: { ...settings.https, ...server, handshakeTimeout: limits.headerTimeoutMs } }
      : { http: server }),
  });
  const connections = new UnauthenticatedConnections(limits.maxUnauthenticatedPerPeer, (peer) =>
    log.warn(
      { peer_ip: peer, limit: limits.maxUnauthenticatedPerPeer },
      "connection closed: too many unauthenticated connections from this address",
    ),
  );
  connections.attach(app.server);
  const silent = new SilentConnections();
  silent.attach(app.server, settings.https !== undefined);
  app.addHook("preClose", async () => silent.closeAll());
  return { app, connections, guard: new RequestGuard(settings.guard) };
}

/** What the request tells about its caller; authentication decides what it proves. */
export function credentialsOf(request: FastifyRequest, transport: "http" | "sse"): Credentials {
  return {
    transport,
    peerIp: request.socket.remoteAddress ?? null,
    authorization: singleHeader(request.headers, "authorization"),
    subjectHeader: singleHeader(request.headers, "x-decision-gate-client-subject"),
    certificateSubject: verifiedCertificateSubject(request.raw.socket),
  };
}

/**
 * The subject of a client certificate the TLS handshake verified against the configured client CA, as
 * comma-separated `KEY=value` pairs in certificate order (e.g. `CN=agent-1,O=Example`); null otherwise.
 */
function verifiedCertificateSubject(socket: Socket): string | null {
  if (!(socket instanceof TLSSocket) || !socket.authorized) return null;
  const subject = socket.getPeerX509Certificate()?.subject;
  return subject === undefined ? null : subject.split("\n").join(",");
}

export function singleHeader(headers: IncomingHttpHeaders, name: string): string | null {
  const value = headers[name];
  return typeof value === "string" ? value : Array.isArray(value) ? (value[0] ?? null) : null;
}
