/** A role granted to a principal, optionally scoped to one tenant and/or namespace (`[[server.auth.principals]]`). */
export interface RoleGrant {
  name: string;
  tenant_id?: bigint;
  namespace_id?: bigint;
}

export interface PrincipalEntry {
  subject: string;
  policy_class?: string;
  roles: RoleGrant[];
}

/** Every tenant, or the listed ones. */
export type TenantReach = "all" | readonly bigint[];

/** Looks up the roles and policy class configured for a principal id. */
export class PrincipalDirectory {
  private readonly bySubject: ReadonlyMap<string, PrincipalEntry>;

  constructor(entries: readonly PrincipalEntry[]) {
    this.bySubject = new Map(entries.map((entry) => [entry.subject, entry]));
  }

  get configured(): boolean {
    return this.bySubject.size > 0;
  }

  entry(principalId: string): PrincipalEntry | undefined {
    return this.bySubject.get(principalId);
  }

  /** The principal's roles that apply to the scope (a role without a tenant or namespace applies everywhere). */
  rolesIn(principalId: string, scope: { tenant_id?: bigint; namespace_id?: bigint }): string[] {
    return this.rolesOf(principalId)
      .filter((role) => roleCovers(role, scope))
      .map((role) => role.name);
  }

  /**
   * Whether a role of the principal covers a call's tenant and namespace. A call without a tenant (a namespace-wide
   * definition, seen by every tenant) needs a role that is not limited to particular tenants.
   */
  covers(principalId: string, tenantId: bigint | null, namespaceId: bigint): boolean {
    const scope = { namespace_id: namespaceId, ...(tenantId === null ? {} : { tenant_id: tenantId }) };
    return this.rolesOf(principalId).some(
      (role) => roleCovers(role, scope) && (tenantId !== null || role.tenant_id === undefined),
    );
  }

  /** The tenants some role of the principal covers. */
  tenantsOf(principalId: string): TenantReach {
    const roles = this.rolesOf(principalId);
    if (roles.some((role) => role.tenant_id === undefined)) return "all";
    return [...new Set(roles.map((role) => role.tenant_id as bigint))];
  }

  private rolesOf(principalId: string): readonly RoleGrant[] {
    return this.bySubject.get(principalId)?.roles ?? [];
  }
}

function roleCovers(role: RoleGrant, scope: { tenant_id?: bigint; namespace_id?: bigint }): boolean {
  const tenantOk = role.tenant_id === undefined || scope.tenant_id === undefined || role.tenant_id === scope.tenant_id;
  const namespaceOk =
    role.namespace_id === undefined || scope.namespace_id === undefined || role.namespace_id === scope.namespace_id;
  return tenantOk && namespaceOk;
}
