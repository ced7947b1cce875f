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
    const roles = this.bySubject.get(principalId)?.roles ?? [];
    return roles.filter((role) => roleCovers(role, scope)).map((role) => role.name);
  }
}

function roleCovers(role: RoleGrant, scope: { tenant_id?: bigint; namespace_id?: bigint }): boolean {
  const tenantOk = role.tenant_id === undefined || scope.tenant_id === undefined || role.tenant_id === scope.tenant_id;
  const namespaceOk =
    role.namespace_id === undefined || scope.namespace_id === undefined || role.namespace_id === scope.namespace_id;
  return tenantOk && namespaceOk;
}
