import { AccessDeniedError } from "../../core/errors.js";
import type { CallContext } from "../context.js";

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
 * The namespace rules every tenant-scoped tool applies (evidence §5.2): the default namespace (1) only for the
 * tenants configured for it, then the namespace authority. Reasons reach only the audit log.
 */
export class NamespaceGuard {
  constructor(
    private readonly policy: NamespacePolicy,
    private readonly authority: NamespaceAuthority | null = null,
  ) {}

  async ensure(tenantId: bigint | null, namespaceId: bigint, context: CallContext): Promise<void> {
    if (namespaceId === DEFAULT_NAMESPACE_ID) this.ensureDefaultAllowed(tenantId);
    await this.authority?.check(namespaceId, context);
  }

  private ensureDefaultAllowed(tenantId: bigint | null): void {
    if (!this.policy.allowDefault) throw new AccessDeniedError("unauthorized", "default namespace is not allowed");
    if (tenantId === null) throw new AccessDeniedError("unauthorized", "default namespace requires tenant_id");
    if (!this.policy.defaultTenants.includes(tenantId)) {
      throw new AccessDeniedError("unauthorized", "default namespace not allowed for tenant");
    }
  }
}
