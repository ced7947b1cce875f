import type { DecisionGateConfig } from "../config/schema.js";

const PREFIX = "decision-gate";
const DAY_MS = 86_400_000;

/** When the configuration file last changed and what time it is now, for the dev-permissive expiry text. */
export interface NoticeClock {
  configModifiedMs: number | null;
  nowMs: number;
}

/**
 * The lines a starting server writes to standard error about its security posture (interface §8.1), in the
 * reference's order: the posture summary, then each relaxation in force. A relaxation that is the point of
 * local-only mode is INFO there and a WARNING anywhere else.
 */
export function startupNotices(config: DecisionGateConfig, clock: NoticeClock): string[] {
  const { server, schema_registry: registry, dev } = config;
  const localOnly = server.auth.mode === "local_only";
  const relaxed = localOnly ? "INFO" : "WARNING";
  const localSuffix = localOnly ? " (local-only mode)" : "";
  const lines = [
    `${PREFIX}: INFO: security posture: transport=${server.transport}, auth=${server.auth.mode}, ` +
      `allow_default_namespace=${config.namespace.allow_default}, dev_permissive=${dev.permissive}, ` +
      `registry.allow_local_only=${registry.acl.allow_local_only}, ` +
      `registry.require_signing=${registry.acl.require_signing}, validation.strict=${config.validation.strict}`,
  ];
  if (localOnly) {
    lines.push(
      `${PREFIX}: INFO: running in local-only mode; configure server.auth to enable bearer_token or mtls for network exposure`,
    );
  }
  if (registry.acl.allow_local_only) {
    lines.push(
      `${PREFIX}: ${relaxed}: schema_registry.acl.allow_local_only=true; local-only callers bypass principal ` +
        `mapping for registry access${localSuffix}`,
    );
  }
  if (!config.validation.strict) {
    lines.push(
      `${PREFIX}: WARNING: validation.strict=false; strict comparator/type validation disabled (allow_permissive must be true)`,
    );
  }
  if (dev.permissive && dev.permissive_warn) {
    const via = server.mode === "dev_permissive" ? "server.mode=dev_permissive (legacy)" : "dev.permissive=true";
    lines.push(
      `${PREFIX}: ${relaxed}: dev-permissive enabled via ${via}; asserted evidence allowed for non-exempt providers ` +
        `only; namespace defaults remain strict${ttlSuffix(dev.permissive_ttl_days, clock)}${localSuffix}`,
    );
  }
  return lines;
}

/** ` (TTL exceeded: Nd elapsed >= Md)` once the configuration file is older than the TTL; nothing is disabled. */
function ttlSuffix(ttlDays: number | bigint | undefined, clock: NoticeClock): string {
  if (ttlDays === undefined || clock.configModifiedMs === null) return "";
  const elapsedDays = Math.floor(Math.max(0, clock.nowMs - clock.configModifiedMs) / DAY_MS);
  return elapsedDays >= Number(ttlDays) ? ` (TTL exceeded: ${elapsedDays}d elapsed >= ${ttlDays}d)` : "";
}
