import { resolve } from "node:path";
import { z } from "zod";
import type { Disclosure, TrustPolicy } from "../core/run/evidence.js";
import type { ScenarioSpec } from "../core/spec/schema.js";
import { AnyJson, decode } from "../core/wire/common.js";
import { createEnvProvider, EnvProviderConfig } from "./builtin/env.js";
import { createHttpProvider, HttpProviderConfig } from "./builtin/http.js";
import { createJsonProvider, type JsonProviderConfigInput } from "./builtin/json.js";
import { createTimeProvider, TimeProviderConfig } from "./builtin/time.js";
import { type BuiltinProviderId, isBuiltinProviderId } from "./contracts/builtin.js";
import { CapabilityRegistry } from "./contracts/capabilities.js";
import { loadContractFile } from "./contracts/load.js";
import { type StrictOptions, validateSpecStrict } from "./contracts/strict.js";
import { disclosurePolicy, type EvidenceConfig, recordingPolicy } from "./disclosure.js";
import { McpProviderSettings } from "./mcp/config.js";
import { createMcpProvider } from "./mcp/provider.js";
import { EvidencePipeline } from "./pipeline.js";
import type { EvidenceProvider } from "./provider.js";
import { type AnchorsConfig, anchorRequirements } from "./trust/anchors.js";
import { loadKeyring } from "./trust/keys.js";
import { type DevConfig, effectiveTrustPolicy, SignatureSetting, type TrustConfig } from "./trust/lanes.js";
import { AUDIT, type SignaturePolicy } from "./trust/signature.js";

/** Keys a built-in provider must not set (the reference's `builtin provider does not accept <field>`). */
const MCP_ONLY_KEYS = [
  "command",
  "url",
  "auth",
  "capabilities_path",
  "protocol",
  "max_retries",
  "retry_backoff_ms",
] as const;

/** One `[[providers]]` table. MCP-specific keys are validated by `McpProviderSettings` when the provider is built. */
export const ProviderEntry = z
  .object({
    name: z.string(),
    type: z.enum(["builtin", "mcp"]),
    command: z.array(z.string()).optional(),
    url: z.string().optional(),
    allow_insecure_http: z.boolean().default(false),
    capabilities_path: z.string().optional(),
    auth: z.object({ bearer_token: z.string() }).optional(),
    trust: SignatureSetting.optional(),
    allow_raw: z.boolean().default(false),
    timeouts: AnyJson.optional(),
    protocol: AnyJson.optional(),
    max_retries: AnyJson.optional(),
    retry_backoff_ms: AnyJson.optional(),
    config: AnyJson.optional(),
  })
  .superRefine((entry, context) => {
    const problem = (message: string, path: string = "name") =>
      context.addIssue({ code: "custom", path: [path], message });
    if (entry.name.trim().length === 0 || entry.name.trim() !== entry.name)
      problem("name must be non-blank and trimmed");
    if (entry.type === "builtin") {
      if (!isBuiltinProviderId(entry.name)) problem(`unknown builtin provider: ${entry.name}`);
      for (const key of MCP_ONLY_KEYS) {
        if (entry[key] !== undefined && !(key === "command" && entry.command?.length === 0)) {
          problem(`builtin provider does not accept ${key}`, key);
        }
      }
      if (entry.allow_insecure_http)
        problem("builtin provider does not accept allow_insecure_http", "allow_insecure_http");
    } else {
      if (isBuiltinProviderId(entry.name)) problem(`provider name reserved for builtin: ${entry.name}`);
      if (entry.capabilities_path === undefined)
        problem("mcp provider requires capabilities_path", "capabilities_path");
      if (entry.config !== undefined) problem("mcp provider does not accept config", "config");
    }
  });
export type ProviderEntry = z.output<typeof ProviderEntry>;

export const ProvidersConfig = z.array(ProviderEntry).superRefine((entries, context) => {
  const seen = new Set<string>();
  entries.forEach((entry, index) => {
    if (seen.has(entry.name)) {
      context.addIssue({ code: "custom", path: [index, "name"], message: `duplicate provider name: ${entry.name}` });
    }
    seen.add(entry.name);
  });
});

/** `[validation]`: the strict comparator/type checks at scenario definition. */
export const ValidationConfig = z
  .object({
    strict: z.boolean().default(true),
    profile: z.literal("strict_core_v1").default("strict_core_v1"),
    allow_permissive: z.boolean().default(false),
    enable_lexicographic: z.boolean().default(false),
    enable_deep_equals: z.boolean().default(false),
  })
  .refine((validation) => validation.strict || validation.allow_permissive, {
    path: ["strict"],
    message: "validation.strict=false requires validation.allow_permissive=true",
  });
export type ValidationConfig = z.output<typeof ValidationConfig>;

/** The configuration sections that shape evidence. */
export interface EvidenceSettings {
  providers: ProviderEntry[];
  trust: TrustConfig;
  dev: DevConfig;
  evidence: EvidenceConfig;
  anchors: AnchorsConfig;
  validation: ValidationConfig;
}

export interface EvidenceEnvironment {
  /** Relative paths (json roots, contract files, key files) resolve against this directory. */
  cwd?: string;
  /** What the `env` provider reads when it has no overrides. */
  environment?: Readonly<Record<string, string | undefined>>;
}

/** Everything evidence-related the server needs, built from configuration. */
export interface EvidenceRuntime {
  pipeline: EvidencePipeline;
  capabilities: CapabilityRegistry;
  /** What `evidence_query` answers and `scenario_next` feedback may reveal. */
  disclosure: Disclosure;
  /** What run state (and so runpacks) records: every value unless `[evidence] record_raw_values = false`. */
  recordDisclosure: Disclosure;
  trust: TrustPolicy;
  /** Definition-time checks of a spec against the providers' contracts (engine §1.4 steps 4 and 5). */
  validateSpec(spec: ScenarioSpec): void;
  /** The strict comparator/type settings, or null when `[validation] strict = false`. */
  strictValidation: StrictOptions | null;
  close(): Promise<void>;
}

/**
 * Builds the providers, contracts, keyrings, anchor requirements and policies from configuration. Any problem
 * (a bad provider table, an unreadable contract or key) fails here, before anything is served.
 */
export async function buildEvidenceRuntime(
  settings: EvidenceSettings,
  environment: EvidenceEnvironment = {},
): Promise<EvidenceRuntime> {
  const cwd = environment.cwd ?? process.cwd();
  const providers: EvidenceProvider[] = [];
  try {
    const capabilities = new CapabilityRegistry();
    const signaturePolicies = new Map<string, SignaturePolicy>();
    for (const [index, entry] of settings.providers.entries()) {
      providers.push(await buildProvider(entry, index, cwd, environment.environment));
      if (entry.type === "builtin") capabilities.registerBuiltin(entry.name);
      else capabilities.register(await loadContractFile(resolve(cwd, entry.capabilities_path ?? ""), entry.name));
      if (entry.trust !== undefined) signaturePolicies.set(entry.name, await signaturePolicy(entry.trust, cwd));
    }
    const disclosure = disclosurePolicy(
      settings.evidence,
      settings.providers.filter((entry) => entry.allow_raw).map((entry) => entry.name),
    );
    const pipeline = new EvidencePipeline({
      providers,
      defaultSignaturePolicy: await signaturePolicy(settings.trust.default_policy, cwd),
      signaturePolicies,
      anchors: anchorRequirements(settings.anchors),
      disclosure,
    });
    const strictOptions = {
      enableLexicographic: settings.validation.enable_lexicographic,
      enableDeepEquals: settings.validation.enable_deep_equals,
    };
    return {
      pipeline,
      capabilities,
      disclosure,
      recordDisclosure: recordingPolicy(settings.evidence, disclosure),
      trust: effectiveTrustPolicy(settings.trust, settings.dev),
      strictValidation: settings.validation.strict ? strictOptions : null,
      validateSpec(spec) {
        capabilities.validateSpec(spec);
        if (settings.validation.strict) validateSpecStrict(spec, capabilities, strictOptions);
      },
      close: () => pipeline.close(),
    };
  } catch (error) {
    await Promise.all(providers.map((provider) => provider.close?.()));
    throw error;
  }
}

async function buildProvider(
  entry: ProviderEntry,
  index: number,
  cwd: string,
  environment: EvidenceEnvironment["environment"],
): Promise<EvidenceProvider> {
  const label = `providers[${index}]`;
  if (entry.type === "mcp")
    return createMcpProvider(entry.name, decode(McpProviderSettings, mcpSettingsOf(entry), label));
  const config = entry.config ?? {};
  switch (entry.name as BuiltinProviderId) {
    case "time":
      return createTimeProvider(decode(TimeProviderConfig, config, `${label}.config`));
    case "env":
      return createEnvProvider(decode(EnvProviderConfig, config, `${label}.config`), environment);
    case "http":
      return createHttpProvider(decode(HttpProviderConfig, config, `${label}.config`));
    case "json":
      return createJsonProvider(config as JsonProviderConfigInput, { cwd });
  }
}

/** The keys of an entry that the MCP client reads; the command is spawned as configured. */
function mcpSettingsOf(entry: ProviderEntry) {
  return {
    command: entry.command,
    url: entry.url,
    allow_insecure_http: entry.allow_insecure_http,
    auth: entry.auth,
    timeouts: entry.timeouts,
    protocol: entry.protocol,
    max_retries: entry.max_retries,
    retry_backoff_ms: entry.retry_backoff_ms,
  };
}

/** Loads the keys of a `require_signature` setting; the configured path string stays the key id. */
async function signaturePolicy(setting: SignatureSetting, cwd: string): Promise<SignaturePolicy> {
  if (setting === "audit") return AUDIT;
  return { kind: "require_signature", keys: await loadKeyring(setting.require_signature.keys, cwd) };
}
