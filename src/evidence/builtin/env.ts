import { z } from "zod";
import type { EvidenceQuery } from "../../core/spec/schema.js";
import { U64 } from "../../core/wire/common.js";
import { isJsonObject } from "../../json/value.js";
import { type EvidenceProvider, EvidenceProviderFailure, emptyEvidence, jsonEvidence } from "../provider.js";

/** `[[providers]] name = "env"` config table. */
export const EnvProviderConfig = z.object({
  allowlist: z.array(z.string()).optional(),
  denylist: z.array(z.string()).default([]),
  max_value_bytes: U64.default(65_536n),
  max_key_bytes: U64.default(255n),
  /** When set, the process environment is never read: only these values exist. */
  overrides: z.record(z.string(), z.string()).optional(),
});
export type EnvProviderConfig = z.output<typeof EnvProviderConfig>;

/**
 * The built-in `env` provider (evidence §1.3): `get` reads one environment variable, subject to the allow and
 * deny lists. An unset variable is an answer without a value, not an error.
 */
export function createEnvProvider(
  config: EnvProviderConfig,
  environment: Readonly<Record<string, string | undefined>> = process.env,
): EvidenceProvider {
  const denied = new Set(config.denylist);
  const allowed = config.allowlist === undefined ? undefined : new Set(config.allowlist);
  const source = config.overrides ?? environment;
  return {
    providerId: "env",
    async query(query: EvidenceQuery) {
      if (query.check_id !== "get") fail("unsupported env check");
      const key = keyParam(query.params);
      if (BigInt(Buffer.byteLength(key)) > config.max_key_bytes) fail("env key exceeds limit");
      if (denied.has(key) || (allowed !== undefined && !allowed.has(key))) fail("env key blocked by policy");
      const anchor = { anchor_type: "env", anchor_value: key };
      const value = Object.hasOwn(source, key) ? source[key] : undefined;
      if (value === undefined) return emptyEvidence({ evidence_anchor: anchor });
      if (BigInt(Buffer.byteLength(value)) > config.max_value_bytes) fail("env value exceeds limit");
      return jsonEvidence(value, { evidence_anchor: anchor, content_type: "text/plain" });
    },
  };
}

/**
 * Startup warnings for a table the reference accepts: without an allowlist (and without overrides), whoever may
 * define a scenario can read every variable of the server's environment through conditions, one character at a
 * time with `contains`, whatever the disclosure policy says about `evidence_query` answers.
 */
export function envConfigWarnings(config: EnvProviderConfig): string[] {
  if (config.allowlist !== undefined || config.overrides !== undefined) return [];
  return [
    "no allowlist: any caller who may define a scenario can read every environment variable of this server " +
      "(a `contains` condition reveals a value one character at a time); set config.allowlist to the variables " +
      "gates need",
  ];
}

function fail(message: string): never {
  throw new EvidenceProviderFailure(message);
}

function keyParam(params: EvidenceQuery["params"]): string {
  if (params === undefined) fail("env check requires params");
  if (!isJsonObject(params)) fail("env params must be an object");
  const key = params.key;
  if (key === undefined) fail("missing env key");
  if (typeof key !== "string") fail("env key must be a string");
  return key;
}
