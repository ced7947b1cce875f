import { AccessDeniedError } from "../../core/errors.js";
import type { CallContext } from "../context.js";
import type { NamespaceAuthority } from "./scope.js";

/** `[namespace.authority.assetcore]`. */
export interface AssetcoreSettings {
  base_url: string;
  auth_token?: string;
  connect_timeout_ms: number;
  request_timeout_ms: number;
}

/**
 * The Asset Core namespace authority (evidence §5.2): `GET <base>/v1/write/namespaces/<id>`; 200 allows, 404 and
 * 401/403 deny, anything else (another status, a timeout, an unreachable host) is unavailable. Every refusal
 * fails closed as `unauthorized`; the reason goes to the audit log.
 */
export function assetcoreAuthority(settings: AssetcoreSettings): NamespaceAuthority {
  const base = settings.base_url.replace(/\/+$/, "");
  return {
    async check(namespaceId: bigint, context: CallContext): Promise<void> {
      const headers: Record<string, string> = {
        "x-correlation-id": context.clientCorrelationId ?? context.serverCorrelationId,
      };
      if (settings.auth_token !== undefined) headers.authorization = `Bearer ${settings.auth_token}`;
      let status: number;
      try {
        const response = await fetch(`${base}/v1/write/namespaces/${namespaceId}`, {
          headers,
          redirect: "manual",
          signal: AbortSignal.timeout(settings.connect_timeout_ms + settings.request_timeout_ms),
        });
        status = response.status;
        await response.body?.cancel();
      } catch (error) {
        const reason = error instanceof Error && error.name === "TimeoutError" ? "timed out" : "unreachable";
        throw new AccessDeniedError("unauthorized", `namespace authority unavailable: ${reason}`);
      }
      if (status === 200) return;
      if (status === 404) throw new AccessDeniedError("unauthorized", "namespace not found");
      if (status === 401 || status === 403) throw new AccessDeniedError("unauthorized", "namespace not authorized");
      throw new AccessDeniedError("unauthorized", `namespace authority error: status ${status}`);
    },
  };
}
