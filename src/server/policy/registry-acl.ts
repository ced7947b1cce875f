import { AccessDeniedError } from "../../core/errors.js";
import type { AuthContext } from "../context.js";
import type { PrincipalDirectory } from "./principals.js";

export type RegistryAction = "register" | "list" | "get";

export interface RegistryAclRule {
  effect: "allow" | "deny";
  actions: readonly RegistryAction[];
  tenants: readonly bigint[];
  namespaces: readonly bigint[];
  subjects: readonly string[];
  roles: readonly string[];
  policy_classes: readonly string[];
}

/** `[schema_registry.acl]`. */
export interface RegistryAclConfig {
  mode: "builtin" | "custom";
  default: "deny" | "allow";
  allow_local_only: boolean;
  require_signing: boolean;
  rules: readonly RegistryAclRule[];
}

export interface RegistryDecision {
  allowed: boolean;
  reason: string;
  roles: string[];
  policyClass: string;
}

const READ_ROLES = [
  "TenantAdmin",
  "NamespaceOwner",
  "NamespaceAdmin",
  "NamespaceWriter",
  "NamespaceReader",
  "SchemaManager",
];
const WRITE_ROLES = ["TenantAdmin", "NamespaceOwner", "NamespaceAdmin"];

/** Who may register, list and read data shapes (interface §4.4). */
export class RegistryAcl {
  constructor(
    private readonly config: RegistryAclConfig,
    private readonly principals: PrincipalDirectory,
  ) {}

  get requireSigning(): boolean {
    return this.config.require_signing;
  }

  decide(
    auth: AuthContext,
    action: RegistryAction,
    scope: { tenant_id: bigint; namespace_id: bigint },
  ): RegistryDecision {
    const roles = this.principals.rolesIn(auth.principalId, scope);
    const configuredClass = this.principals.entry(auth.principalId)?.policy_class;
    const decide = (allowed: boolean, reason: string, policyClass: string): RegistryDecision => ({
      allowed,
      reason,
      roles,
      policyClass,
    });
    if (this.config.mode === "custom") {
      const policyClass = configuredClass ?? "prod";
      const rule = this.config.rules.find((candidate) =>
        ruleMatches(candidate, auth, action, scope, roles, policyClass),
      );
      if (rule !== undefined) return decide(rule.effect === "allow", `custom_${rule.effect}`, policyClass);
      return decide(this.config.default === "allow", `default_${this.config.default}`, policyClass);
    }
    const policyClass = (configuredClass ?? "prod").toLowerCase();
    if (this.config.allow_local_only && auth.method === "local") {
      return decide(true, "builtin_allow_local_only", policyClass);
    }
    if (action !== "register") {
      const allowed = roles.some((role) => READ_ROLES.includes(role));
      return decide(allowed, allowed ? "builtin_allow_read" : "builtin_deny_read", policyClass);
    }
    const allowed =
      roles.some((role) => WRITE_ROLES.includes(role)) || (policyClass !== "prod" && roles.includes("SchemaManager"));
    return decide(allowed, allowed ? "builtin_allow_write" : "builtin_deny_write", policyClass);
  }

  /** Throws `unauthorized` (the reason goes to the audit log) unless the decision allows. */
  enforce(decision: RegistryDecision): void {
    if (!decision.allowed) {
      throw new AccessDeniedError(
        "unauthorized",
        `schema registry access denied (${decision.reason}); configure server.auth.principals or schema_registry.acl`,
      );
    }
  }
}

function ruleMatches(
  rule: RegistryAclRule,
  auth: AuthContext,
  action: RegistryAction,
  scope: { tenant_id: bigint; namespace_id: bigint },
  roles: readonly string[],
  policyClass: string,
): boolean {
  const matches = <T>(list: readonly T[], test: (item: T) => boolean) => list.length === 0 || list.some(test);
  return (
    matches(rule.actions, (item) => item === action) &&
    matches(rule.tenants, (item) => item === scope.tenant_id) &&
    matches(rule.namespaces, (item) => item === scope.namespace_id) &&
    matches(rule.subjects, (item) => item === auth.principalId) &&
    matches(rule.roles, (item) => roles.includes(item)) &&
    matches(rule.policy_classes, (item) => item === policyClass)
  );
}
