import { AccessDeniedError } from "../../core/errors.js";

/** The reserved default namespace. */
export const DEFAULT_NAMESPACE_ID = 1n;

export interface NamespacePolicy {
  allowDefault: boolean;
  defaultTenants: readonly bigint[];
}

/**
 * The default-namespace rules (evidence §5.2): namespace 1 is refused unless allowed for the calling tenant.
 * The reason reaches only the audit log; the caller sees `unauthorized`.
 */
export function ensureNamespaceAllowed(policy: NamespacePolicy, tenantId: bigint | null, namespaceId: bigint): void {
  if (namespaceId !== DEFAULT_NAMESPACE_ID) return;
  if (!policy.allowDefault) throw new AccessDeniedError("unauthorized", "default namespace is not allowed");
  if (tenantId === null) throw new AccessDeniedError("unauthorized", "default namespace requires tenant_id");
  if (!policy.defaultTenants.includes(tenantId)) {
    throw new AccessDeniedError("unauthorized", "default namespace not allowed for tenant");
  }
}
