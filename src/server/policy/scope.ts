import { AccessDeniedError } from "../../core/errors.js";
import { type AuditLog, auditCorrelation } from "../audit.js";
import type { CallContext } from "../context.js";
import type { PrincipalDirectory } from "./principals.js";

/** The reserved default namespace. */
export const DEFAULT_NAMESPACE_ID = 1n;

export interface NamespacePolicy {
  allowDefault: boolean;
  defaultTenants: readonly bigint[];
}

/** Whoever else decides whether a namespace exists and may be used (`[namespace.authority]`). */
export interface NamespaceAuthority {
  /** Resolves when the namespace is usable; throws `unauthorized` otherwise (failing closed). */
  check(namespaceId: bigint, context: CallContext): Promise<void>;
}

/**
 * The scope rules every tenant-scoped tool applies: when principals are configured, the caller must hold a role
 * covering the tenant and namespace (cross-tenant calls are refused); the default namespace (1) only for the
 * tenants configured for it (evidence §5.2); then the namespace authority. Reasons reach only the audit log.
 */
export class ScopeGuard {
  constructor(
    private readonly policy: NamespacePolicy,
    private readonly principals: PrincipalDirectory,
    private readonly authority: NamespaceAuthority | null,
    private readonly audit: AuditLog,
  ) {}

  /** Passes, or throws `unauthorized`; either way the decision is audited (`tenant_authz`). */
  async ensure(tenantId: bigint | null, namespaceId: bigint, context: CallContext): Promise<void> {
    const decide = (allowed: boolean, reason: string) =>
      this.audit.tenantAuthz({
        ...auditCorrelation(context),
        tool: context.action,
        allowed,
        reason,
        principal_id: context.auth.principalId,
        tenant_id: tenantId,
        namespace_id: namespaceId,
      });
    try {
      this.ensureRoleCovers(tenantId, namespaceId, context);
      if (namespaceId === DEFAULT_NAMESPACE_ID) this.ensureDefaultAllowed(tenantId);
      await this.authority?.check(namespaceId, context);
    } catch (error) {
      decide(false, error instanceof AccessDeniedError ? error.reason : "error");
      throw error;
    }
    decide(true, this.principals.configured ? "role_allow" : "open_allow");
  }

  private ensureRoleCovers(tenantId: bigint | null, namespaceId: bigint, context: CallContext): void {
    if (!this.principals.configured) return;
    const scope = { namespace_id: namespaceId, ...(tenantId === null ? {} : { tenant_id: tenantId }) };
    if (this.principals.rolesIn(context.auth.principalId, scope).length === 0) {
      throw new AccessDeniedError(
        "unauthorized",
        `principal ${context.auth.principalId} has no role for tenant ${tenantId ?? "(none)"} namespace ${namespaceId}`,
      );
    }
  }

  private ensureDefaultAllowed(tenantId: bigint | null): void {
    if (!this.policy.allowDefault) throw new AccessDeniedError("unauthorized", "default namespace is not allowed");
    if (tenantId === null) throw new AccessDeniedError("unauthorized", "default namespace requires tenant_id");
    if (!this.policy.defaultTenants.includes(tenantId)) {
      throw new AccessDeniedError("unauthorized", "default namespace not allowed for tenant");
    }
  }
}
