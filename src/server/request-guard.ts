import type { IncomingHttpHeaders } from "node:http";
import { ForeignRequestError, UnsupportedMediaTypeError } from "../core/errors.js";
import { isLoopbackAddress, parseHostHeader, parseWebOrigin } from "../net/address.js";

/** `server.allowed_hosts`, `server.allowed_origins`, and whether the server listens on a loopback address. */
export interface RequestGuardSettings {
  loopbackBind: boolean;
  allowedHosts: readonly string[];
  allowedOrigins: readonly string[];
}

/**
 * D17: refuses what a web browser could send on behalf of another site. Any page may POST a "simple" request
 * (`text/plain`, a form) to any address without asking the server first, and may read the answer when its own
 * host name points at the server, which DNS rebinding arranges for 127.0.0.1. So browsers' requests from foreign
 * origins are refused, and on a loopback bind the `Host` must be a loopback name; programs that are not browsers
 * send no `Origin` and the address they connect to as `Host`, and are unaffected.
 */
export class RequestGuard {
  private readonly hosts: ReadonlySet<string>;
  private readonly origins: ReadonlySet<string>;
  private readonly checksHost: boolean;
  /** The last `Host` checked and whether it is answered: clients send the same one on every request. */
  private lastHost: { header: string; allowed: boolean } | null = null;

  constructor(settings: RequestGuardSettings) {
    this.hosts = new Set(settings.allowedHosts.map((host) => parseHostHeader(host)?.hostname ?? host));
    this.origins = new Set(settings.allowedOrigins.map((origin) => parseWebOrigin(origin) ?? origin));
    this.checksHost = settings.loopbackBind || settings.allowedHosts.length > 0;
  }

  /** Refuses a `Host` the server does not answer to, then an `Origin` that is neither its own nor allowed. */
  checkSource(headers: IncomingHttpHeaders): void {
    const { host, origin } = headers;
    if (this.checksHost && (host === undefined || !this.isAnsweredHost(host))) {
      throw new ForeignRequestError("host_not_allowed", "host not allowed");
    }
    if (origin !== undefined && !this.isAllowedOrigin(origin, host)) {
      throw new ForeignRequestError("origin_not_allowed", "origin not allowed");
    }
  }

  private isAnsweredHost(header: string): boolean {
    if (this.lastHost?.header !== header) {
      const hostname = parseHostHeader(header)?.hostname ?? null;
      const allowed = hostname !== null && (isLoopbackHostName(hostname) || this.hosts.has(hostname));
      this.lastHost = { header, allowed };
    }
    return this.lastHost.allowed;
  }

  private isAllowedOrigin(origin: string, host: string | undefined): boolean {
    const serialized = parseWebOrigin(origin);
    if (serialized === null) return false;
    const own = host === undefined ? null : (parseHostHeader(host)?.host ?? null);
    return this.origins.has(serialized) || new URL(serialized).host === own;
  }
}

/** `/rpc` and `/mcp` take `application/json` bodies only (parameters such as `charset` allowed). */
export function requireJsonBody(contentType: string | undefined): void {
  const mediaType = contentType?.split(";")[0]?.trim().toLowerCase();
  if (mediaType !== "application/json") {
    throw new UnsupportedMediaTypeError("unsupported media type: the request body must be application/json");
  }
}

/** `localhost`, its subdomains (RFC 6761: browsers resolve them to loopback themselves) and loopback addresses. */
function isLoopbackHostName(hostname: string): boolean {
  if (hostname === "localhost" || hostname.endsWith(".localhost")) return true;
  return isLoopbackAddress(hostname.replace(/^\[(.*)\]$/, "$1"));
}
