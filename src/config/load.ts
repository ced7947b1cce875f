import { mkdir, readFile, stat } from "node:fs/promises";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { parse, TomlError } from "smol-toml";
import type { z } from "zod";
import { DecisionGateError, type ErrorDetails } from "../core/errors.js";
import { formatPath } from "../core/wire/common.js";
import type { ProviderEntry } from "../evidence/registry.js";
import { isJsonObject } from "../json/value.js";
import { BUILTIN_PRESET, presetNameOfPath, presetPath } from "./presets.js";
import { DecisionGateConfig, VALIDATION_ORDER } from "./schema.js";
import { findUnknownKeys, formatUnknownKey } from "./unknown-keys.js";

/*
 * Finding, reading and validating `decision-gate.toml` (interface §5.0). Differences from the reference:
 * - without any configuration file the built-in quickstart-dev preset runs, with its state in `./.decision-gate/`;
 * - unknown keys are reported (warnings, or errors with `strict`);
 * - relative paths resolve against the working directory, as with the reference, unless the file says
 *   `[paths] relative_to = "config_file"` (this project's presets do), see `resolveConfigPaths`.
 */

export const CONFIG_FILE_NAME = "decision-gate.toml";
export const CONFIG_PATH_ENV = "DECISION_GATE_CONFIG";
export const MAX_CONFIG_BYTES = 1_048_576;
/** Where the built-in preset keeps its databases and evidence, relative to the working directory. */
export const STATE_DIRECTORY = ".decision-gate";

const MAX_PATH_BYTES = 4096;
const MAX_PATH_COMPONENT_BYTES = 255;

export type ConfigErrorCode = "config_io" | "config_parse" | "config_invalid";

/** A configuration that cannot be used. Messages start with `config io error: `, `config parse error: ` or `invalid config: `. */
export class ConfigError extends DecisionGateError {
  constructor(code: ConfigErrorCode, message: string, details?: ErrorDetails) {
    super("invalid_request", code, message, details);
  }
}

const ioError = (detail: string) => new ConfigError("config_io", `config io error: ${detail}`);
const invalidConfig = (detail: string, details?: ErrorDetails) =>
  new ConfigError("config_invalid", `invalid config: ${detail}`, details);

export interface LoadConfigOptions {
  /** An explicit file (`--config`); relative to `cwd`. */
  path?: string;
  /** Read for `DECISION_GATE_CONFIG`; defaults to `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Defaults to `process.cwd()`. */
  cwd?: string;
  /** Unknown keys are errors instead of warnings. */
  strict?: boolean;
}

export interface LoadedConfig {
  /** Validated, with every relative path made absolute (trust key ids excepted). */
  config: DecisionGateConfig;
  /** The file read, or null for the built-in preset. */
  path: string | null;
  /** What relative paths resolve against: the working directory, or the file's directory (`[paths] relative_to`). */
  baseDir: string;
  warnings: string[];
  /** The shipped preset the configuration came from, if any. */
  preset: string | null;
}

/**
 * Loads the configuration from `options.path`, else `$DECISION_GATE_CONFIG`, else `<cwd>/decision-gate.toml`,
 * else the built-in quickstart-dev preset (state under `<cwd>/.decision-gate/`, created if missing).
 */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<LoadedConfig> {
  const cwd = resolve(options.cwd ?? process.cwd());
  const strict = options.strict ?? false;
  const path = await locateConfigFile(options, cwd);
  if (path === null) return loadBuiltinPreset(cwd, strict);
  const { config, warnings } = parseConfigText(await readConfigText(path), { strict });
  const baseDir = config.paths.relative_to === "config_file" ? dirname(path) : cwd;
  return { config: resolveConfigPaths(config, baseDir), path, baseDir, warnings, preset: presetNameOfPath(path) };
}

async function locateConfigFile(options: LoadConfigOptions, cwd: string): Promise<string | null> {
  const named = options.path ?? configPathFromEnv(options.env ?? process.env);
  if (named !== undefined) {
    checkPathLimits(named);
    return resolve(cwd, named);
  }
  const local = join(cwd, CONFIG_FILE_NAME);
  const info = await stat(local).catch(() => undefined);
  return info?.isFile() === true ? local : null;
}

function configPathFromEnv(env: NodeJS.ProcessEnv): string | undefined {
  const value = env[CONFIG_PATH_ENV];
  if (value === undefined || value === "") return undefined;
  if (Buffer.byteLength(value) > MAX_PATH_BYTES) throw ioError(`${CONFIG_PATH_ENV} exceeds ${MAX_PATH_BYTES} bytes`);
  return value;
}

function checkPathLimits(path: string): void {
  if (Buffer.byteLength(path) > MAX_PATH_BYTES) throw ioError(`config path exceeds ${MAX_PATH_BYTES} bytes`);
  if (path.split(/[\\/]/).some((part) => Buffer.byteLength(part) > MAX_PATH_COMPONENT_BYTES)) {
    throw ioError(`config path has a component longer than ${MAX_PATH_COMPONENT_BYTES} bytes`);
  }
}

async function readConfigText(path: string): Promise<string> {
  const bytes = await readConfigBytes(path);
  if (bytes.length > MAX_CONFIG_BYTES) throw invalidConfig("config file exceeds size limit");
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw invalidConfig("config file must be utf-8");
  }
}

async function readConfigBytes(path: string): Promise<Uint8Array> {
  try {
    const info = await stat(path);
    if (info.size > MAX_CONFIG_BYTES) throw invalidConfig("config file exceeds size limit");
    return await readFile(path);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw ioError(error instanceof Error ? error.message : String(error));
  }
}

/** The built-in quickstart-dev preset, with databases and the json provider's root under `<cwd>/.decision-gate/`. */
async function loadBuiltinPreset(cwd: string, strict: boolean): Promise<LoadedConfig> {
  const stateDirectory = join(cwd, STATE_DIRECTORY);
  const evidenceRoot = join(stateDirectory, "evidence");
  await mkdir(evidenceRoot, { recursive: true }).catch((error: Error) => {
    throw ioError(error.message);
  });
  const { config, warnings } = parseConfigText(await readConfigText(presetPath(BUILTIN_PRESET)), { strict });
  const notice =
    `no configuration file found (--config, ${CONFIG_PATH_ENV}, ./${CONFIG_FILE_NAME}); ` +
    `running the built-in ${BUILTIN_PRESET} preset (local only, dev-permissive) with state in ${stateDirectory}`;
  return {
    config: withJsonRoot(resolveConfigPaths(config, cwd), evidenceRoot),
    path: null,
    baseDir: cwd,
    warnings: [...warnings, notice],
    preset: BUILTIN_PRESET,
  };
}

function withJsonRoot(config: DecisionGateConfig, root: string): DecisionGateConfig {
  return {
    ...config,
    providers: config.providers.map((entry) =>
      isBuiltinJson(entry) && isJsonObject(entry.config) ? { ...entry, config: { ...entry.config, root } } : entry,
    ),
  };
}

function isBuiltinJson(entry: ProviderEntry): boolean {
  return entry.type === "builtin" && entry.name === "json";
}

// ---------------------------------------------------------------------------------------------------------------
// Text → validated configuration
// ---------------------------------------------------------------------------------------------------------------

export interface ParsedConfig {
  /** Validated; relative paths still as written. */
  config: DecisionGateConfig;
  warnings: string[];
}

/** Parses and validates TOML text. Unknown keys are warnings, or an `invalid config` error under `strict`. */
export function parseConfigText(text: string, options: { strict?: boolean } = {}): ParsedConfig {
  const document = parseToml(text);
  const warnings = findUnknownKeys(document).map(formatUnknownKey);
  if (options.strict === true && warnings.length > 0)
    throw invalidConfig(warnings.join("; "), { unknownKeys: warnings });
  try {
    return { config: validateConfig(document), warnings };
  } catch (error) {
    throw withUnknownKeys(error, warnings);
  }
}

/** A misspelled key often explains a validation error (a required key "missing"), so the error names them too. */
function withUnknownKeys(error: unknown, warnings: readonly string[]): unknown {
  if (!(error instanceof ConfigError) || warnings.length === 0) return error;
  return new ConfigError(error.code as ConfigErrorCode, `${error.message}; ${warnings.join("; ")}`, {
    ...error.details,
    unknownKeys: warnings,
  });
}

function parseToml(text: string): Record<string, unknown> {
  try {
    return parse(text, { integersAsBigInt: true });
  } catch (error) {
    if (!(error instanceof TomlError)) throw error;
    const reason = (error.message.split("\n")[0] ?? "").replace(/^Invalid TOML document: /, "");
    throw new ConfigError(
      "config_parse",
      `config parse error: ${reason} at line ${error.line}, column ${error.column}`,
      { line: error.line, column: error.column },
    );
  }
}

/**
 * Validates a parsed document. Every problem is reported, ordered as the reference validates (so its first
 * error comes first): `invalid config: <path>: <message>; ...`.
 */
export function validateConfig(document: unknown): DecisionGateConfig {
  const result = DecisionGateConfig.safeParse(document, { error: describeIssue });
  if (result.success) return result.data;
  const issues = orderByValidation(result.error.issues).map((issue) => ({
    path: issuePath(issue.path),
    message: issue.message,
  }));
  throw invalidConfigIssues(issues);
}

/** The `invalid config` error listing `issues`, each as `<key path>: <message>`, in the order given. */
export function invalidConfigIssues(issues: ReadonlyArray<{ path: string; message: string }>): ConfigError {
  const text = issues.map((issue) => (issue.path === "" ? issue.message : `${issue.path}: ${issue.message}`));
  return invalidConfig(text.join("; "), { issues });
}

function orderByValidation(issues: readonly z.core.$ZodIssue[]): z.core.$ZodIssue[] {
  const rank = (issue: z.core.$ZodIssue) => {
    const index = (VALIDATION_ORDER as readonly PropertyKey[]).indexOf(issue.path[0] ?? "");
    return index === -1 ? VALIDATION_ORDER.length : index;
  };
  return [...issues].sort((a, b) => rank(a) - rank(b));
}

function issuePath(path: readonly PropertyKey[]): string {
  const [first, ...rest] = path;
  return first === undefined ? "" : formatPath(String(first), rest);
}

const EXPECTED: Readonly<Record<string, string>> = {
  bigint: "an integer",
  object: "a table",
  array: "an array",
  string: "a string",
  boolean: "a boolean",
};

/** Messages for zod's generic issues, in configuration terms (schema-specific messages take precedence). */
function describeIssue(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case "invalid_type":
      return issue.input === undefined ? "missing field" : `expected ${EXPECTED[issue.expected] ?? issue.expected}`;
    case "invalid_value":
      return issue.input === undefined ? "missing field" : `expected one of ${listValues(issue.values)}`;
    case "invalid_union":
      return "discriminator" in issue && Array.isArray(issue.options)
        ? `expected ${issue.discriminator} to be one of ${listValues(issue.options)}`
        : undefined;
    case "too_small":
      return issue.origin === "array"
        ? `must have at least ${issue.minimum} entries`
        : `must be at least ${issue.minimum}`;
    case "too_big":
      return issue.origin === "array"
        ? `must have at most ${issue.maximum} entries`
        : `must be at most ${issue.maximum}`;
    default:
      return undefined;
  }
}

function listValues(values: readonly unknown[]): string {
  return values.map((value) => (typeof value === "string" ? JSON.stringify(value) : String(value))).join(", ");
}

// ---------------------------------------------------------------------------------------------------------------
// Relative paths
// ---------------------------------------------------------------------------------------------------------------

/**
 * Makes every relative path of `config` absolute against `baseDir` (the working directory, or the configuration
 * file's directory under `[paths] relative_to = "config_file"`): the audit log, TLS files, SQLite databases,
 * `docs.extra_paths`, the filesystem runpack root, MCP providers' `capabilities_path` and the json provider's
 * `root`. Trust key paths are left as written, because the configured string is also the key id
 * that signed evidence names; whoever reads the key files resolves them against `baseDir`.
 */
export function resolveConfigPaths(config: DecisionGateConfig, baseDir: string): DecisionGateConfig {
  const at = (path: string) => resolvePath(baseDir, path);
  const atOptional = (path: string | undefined) => (path === undefined ? undefined : at(path));
  const { server, runpack_storage: runpackStorage } = config;
  return {
    ...config,
    server: {
      ...server,
      tls: server.tls && {
        ...server.tls,
        cert_path: at(server.tls.cert_path),
        key_path: at(server.tls.key_path),
        client_ca_path: atOptional(server.tls.client_ca_path),
      },
      audit: { ...server.audit, path: atOptional(server.audit.path) },
    },
    run_state_store: { ...config.run_state_store, path: atOptional(config.run_state_store.path) },
    schema_registry: { ...config.schema_registry, path: atOptional(config.schema_registry.path) },
    docs: { ...config.docs, extra_paths: config.docs.extra_paths.map(at) },
    runpack_storage:
      runpackStorage.type === "filesystem"
        ? {
            ...runpackStorage,
            root: at(runpackStorage.root),
            signing_key: runpackStorage.signing_key === undefined ? undefined : at(runpackStorage.signing_key),
          }
        : runpackStorage,
    providers: config.providers.map((entry) => resolveProviderPaths(entry, at)),
    runtime_actions: { ...config.runtime_actions, receipt_log: atOptional(config.runtime_actions.receipt_log) },
  };
}

function resolveProviderPaths(entry: ProviderEntry, at: (path: string) => string): ProviderEntry {
  const resolved = { ...entry };
  if (entry.capabilities_path !== undefined) resolved.capabilities_path = at(entry.capabilities_path);
  if (isBuiltinJson(entry) && isJsonObject(entry.config) && typeof entry.config.root === "string") {
    resolved.config = { ...entry.config, root: at(entry.config.root) };
  }
  return resolved;
}

/** Blank paths stay blank, so that the check that rejects them still sees them. */
function resolvePath(baseDir: string, path: string): string {
  if (path.trim() === "" || isAbsolute(path)) return path;
  return resolve(baseDir, path);
}
