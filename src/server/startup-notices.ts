import type { DecisionGateConfig } from "../config/schema.js";
import { EnvProviderConfig, envConfigWarnings } from "../evidence/builtin/env.js";
import { HttpProviderConfig, httpConfigWarnings } from "../evidence/builtin/http.js";

/** The reference's prefix (`decision-gate-mcp`), kept so that tooling reading its startup lines works unchanged. */
export const NOTICE_PREFIX = "decision-gate-mcp";
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
    `${NOTICE_PREFIX}: INFO: security posture: transport=${server.transport}, auth=${server.auth.mode}, ` +
      `allow_default_namespace=${config.namespace.allow_default}, dev_permissive=${dev.permissive}, ` +
      `registry.allow_local_only=${registry.acl.allow_local_only}, ` +
      `registry.require_signing=${registry.acl.require_signing}, validation.strict=${config.validation.strict}`,
  ];
  if (localOnly) {
    lines.push(
      `${NOTICE_PREFIX}: INFO: running in local-only mode; configure server.auth to enable bearer_token or mtls for network exposure`,
    );
  }
  if (registry.acl.allow_local_only) {
    lines.push(
      `${NOTICE_PREFIX}: ${relaxed}: schema_registry.acl.allow_local_only=true; local-only callers bypass principal ` +
        `mapping for registry access${localSuffix}`,
    );
  }
  if (registry.acl.require_signing && registry.acl.signing_keys.length === 0) {
    lines.push(
      `${NOTICE_PREFIX}: WARNING: schema_registry.acl.require_signing is on without signing_keys: schema signatures are ` +
        "checked for presence only, not verified; configure schema_registry.acl.signing_keys to verify them",
    );
  }
  if (!config.validation.strict) {
    lines.push(
      `${NOTICE_PREFIX}: WARNING: validation.strict=false; strict comparator/type validation disabled (allow_permissive must be true)`,
    );
  }
  if (dev.permissive && dev.permissive_warn) {
    const via = server.mode === "dev_permissive" ? "server.mode=dev_permissive (legacy)" : "dev.permissive=true";
    lines.push(
      `${NOTICE_PREFIX}: ${relaxed}: dev-permissive enabled via ${via}; asserted evidence allowed for non-exempt providers ` +
        `only; namespace defaults remain strict${ttlSuffix(dev.permissive_ttl_days, clock)}${localSuffix}`,
    );
  }
  lines.push(...providerConfigNotices(config));
  return lines;
}

/** Provider settings the reference accepts and this project advises against (a bad table fails startup anyway). */
function providerConfigNotices(config: DecisionGateConfig): string[] {
  const localOnly = config.server.auth.mode === "local_only";
  return config.providers.flatMap((entry, index) => {
    if (entry.type !== "builtin") return [];
    const warnings = builtinProviderWarnings(entry.name, entry.config ?? {}, localOnly);
    return warnings.map((warning) => `${NOTICE_PREFIX}: WARNING: providers[${index}] (${entry.name}): ${warning}`);
  });
}

/** The env provider's open environment matters only when callers other than local ones may define scenarios. */
function builtinProviderWarnings(name: string, settings: unknown, localOnly: boolean): string[] {
  if (name === "http") {
    const parsed = HttpProviderConfig.safeParse(settings);
    return parsed.success ? httpConfigWarnings(parsed.data) : [];
  }
  if (name === "env" && !localOnly) {
    const parsed = EnvProviderConfig.safeParse(settings);
    return parsed.success ? envConfigWarnings(parsed.data) : [];
  }
  return [];
}

/** ` (TTL exceeded: Nd elapsed >= Md)` once the configuration file is older than the TTL; nothing is disabled. */
function ttlSuffix(ttlDays: number | bigint | undefined, clock: NoticeClock): string {
  if (ttlDays === undefined || clock.configModifiedMs === null) return "";
  const elapsedDays = Math.floor(Math.max(0, clock.nowMs - clock.configModifiedMs) / DAY_MS);
  return elapsedDays >= Number(ttlDays) ? ` (TTL exceeded: ${elapsedDays}d elapsed >= ${ttlDays}d)` : "";
}
