import { AccessDeniedError } from "../../core/errors.js";
import { type AuditLog, auditCorrelation } from "../audit.js";
import type { CallContext } from "../context.js";
import type { PrincipalDirectory, TenantReach } from "./principals.js";

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
 * The scope rules every tenant-scoped tool applies: with tenant isolation (D13, `[server.auth] tenant_isolation`),
 * the caller must hold a role covering the tenant and namespace (cross-tenant calls are refused); the default
 * namespace (1) only for the tenants configured for it (evidence §5.2); then the namespace authority. Without
 * tenant isolation, as with the reference, principals drive only the schema-registry ACL. Reasons reach only the
 * audit log.
 */
export class ScopeGuard {
  /** `isolation`: the principals whose roles must cover every call, or null without tenant isolation. */
  constructor(
    private readonly policy: NamespacePolicy,
    private readonly isolation: PrincipalDirectory | null,
    private readonly authority: NamespaceAuthority | null,
    private readonly audit: AuditLog,
  ) {}

  get isolatesTenants(): boolean {
    return this.isolation !== null;
  }

  /** The tenants the caller's roles reach: every tenant without tenant isolation. */
  tenantsReachedBy(context: CallContext): TenantReach {
    return this.isolation?.tenantsOf(context.auth.principalId) ?? "all";
  }

  /** Passes, or throws `unauthorized`; either way the decision is audited (`tenant_authz`). */
  async ensure(tenantId: bigint | null, namespaceId: bigint, context: CallContext): Promise<void> {
    const decide = (allowed: boolean, reason: string) =>
      this.audit.tenantAuthz({
        tool: context.action,
        ...auditCorrelation(context),
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
    decide(true, this.isolation === null ? "noop_allow" : "role_allow");
  }

  private ensureRoleCovers(tenantId: bigint | null, namespaceId: bigint, context: CallContext): void {
    if (this.isolation === null || this.isolation.covers(context.auth.principalId, tenantId, namespaceId)) return;
    const tenant = tenantId === null ? "every tenant" : `tenant ${tenantId}`;
    throw new AccessDeniedError(
      "unauthorized",
      `principal ${context.auth.principalId} has no role for ${tenant} in namespace ${namespaceId}`,
    );
  }

  private ensureDefaultAllowed(tenantId: bigint | null): void {
    if (!this.policy.allowDefault) throw new AccessDeniedError("unauthorized", "default namespace is not allowed");
    if (tenantId === null) throw new AccessDeniedError("unauthorized", "default namespace requires tenant_id");
    if (!this.policy.defaultTenants.includes(tenantId)) {
      throw new AccessDeniedError("unauthorized", "default namespace not allowed for tenant");
    }
  }
}
