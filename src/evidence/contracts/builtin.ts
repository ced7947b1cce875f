import { COMPARATORS, type Comparator } from "../../core/spec/schema.js";
import type { JsonObject } from "../../json/value.js";
import type { CheckContract, ProviderContract } from "./schema.js";

/*
 * The contracts of the four built-in providers (evidence §1.2–§1.5, engine §1.4). Check ids, determinism,
 * `params_required`, the params and result schemas, comparator allow-lists, anchor types and content types are
 * the reference's; names, descriptions, notes and examples are this project's words. JSON integers are `bigint`.
 */

export const BUILTIN_PROVIDER_IDS = ["time", "env", "json", "http"] as const;
export type BuiltinProviderId = (typeof BUILTIN_PROVIDER_IDS)[number];

export function isBuiltinProviderId(providerId: string): providerId is BuiltinProviderId {
  return (BUILTIN_PROVIDER_IDS as readonly string[]).includes(providerId);
}

/** A fresh copy of the built-in contract for `providerId`, or undefined when it is not a built-in id. */
export function builtinContract(providerId: string): ProviderContract | undefined {
  return isBuiltinProviderId(providerId) ? CONTRACT_FACTORIES[providerId]() : undefined;
}

/** Fresh copies of all four built-in contracts, in the reference's order. */
export function builtinContracts(): ProviderContract[] {
  return BUILTIN_PROVIDER_IDS.map((providerId) => CONTRACT_FACTORIES[providerId]());
}

const CONTRACT_FACTORIES: Record<BuiltinProviderId, () => ProviderContract> = {
  time: timeContract,
  env: envContract,
  json: jsonContract,
  http: httpContract,
};

const NUMERIC_COMPARATORS: Comparator[] = [
  "equals",
  "not_equals",
  "greater_than",
  "greater_than_or_equal",
  "less_than",
  "less_than_or_equal",
  "in_set",
  "exists",
  "not_exists",
];
const BOOLEAN_COMPARATORS: Comparator[] = ["equals", "not_equals", "in_set", "exists", "not_exists"];
const TEXT_COMPARATORS: Comparator[] = ["equals", "not_equals", "contains", "in_set", "exists", "not_exists"];
const PRESENCE_COMPARATORS: Comparator[] = ["exists", "not_exists"];
const ALL_COMPARATORS: Comparator[] = [...COMPARATORS];

const TRIGGER_TIME_ANCHORS = ["trigger_time_unix_millis", "trigger_time_logical"];
const JSON_CONTENT = ["application/json"];

/** An object schema with exactly the given properties and no others. */
function closedObject(properties: JsonObject, required: string[]): JsonObject {
  return { type: "object", required, properties, additionalProperties: false };
}

function property(type: string, description: string): JsonObject {
  return { type, description };
}

function withDefault(schema: JsonObject, value: JsonObject[string]): JsonObject {
  return { ...schema, default: value };
}

function timeContract(): ProviderContract {
  return {
    provider_id: "time",
    name: "Time Provider",
    description: "Answers from the trigger timestamp supplied with each request; the wall clock is never read.",
    transport: "builtin",
    config_schema: {
      type: "object",
      properties: {
        allow_logical: withDefault(property("boolean", "Accept logical (counter) trigger timestamps."), true),
      },
      additionalProperties: false,
    },
    checks: [timeNowCheck(), timeThresholdCheck("after"), timeThresholdCheck("before")],
    notes: [
      "Only the trigger timestamp is consulted, so answers replay identically.",
      "Works with unix_millis and logical trigger timestamps.",
    ],
  };
}

function timeNowCheck(): CheckContract {
  return {
    check_id: "now",
    description: "The trigger timestamp as a JSON integer (milliseconds or logical counter).",
    determinism: "time_dependent",
    params_required: false,
    params_schema: {
      type: "object",
      description: "This check takes no parameters.",
      properties: {},
      additionalProperties: false,
    },
    result_schema: { type: "integer" },
    allowed_comparators: [...NUMERIC_COMPARATORS],
    anchor_types: [...TRIGGER_TIME_ANCHORS],
    content_types: [...JSON_CONTENT],
    examples: [{ description: "The trigger time of the request.", params: {}, result: 1710000000000n }],
  };
}

function timeThresholdCheck(direction: "after" | "before"): CheckContract {
  const isAfter = direction === "after";
  return {
    check_id: direction,
    description: `True when the trigger time is strictly ${direction} the given threshold.`,
    determinism: "time_dependent",
    params_required: true,
    params_schema: closedObject(
      {
        timestamp: {
          oneOf: [{ type: "integer" }, { type: "string" }],
          description: "Threshold: unix milliseconds (or a logical value) as an integer, or an RFC 3339 string.",
        },
      },
      ["timestamp"],
    ),
    result_schema: { type: "boolean" },
    allowed_comparators: [...BOOLEAN_COMPARATORS],
    anchor_types: [...TRIGGER_TIME_ANCHORS],
    content_types: [...JSON_CONTENT],
    examples: [
      isAfter
        ? { description: "Has the release window opened?", params: { timestamp: 1710000000000n }, result: true }
        : {
            description: "Is it still before the cut-off?",
            params: { timestamp: "2024-01-01T00:00:00Z" },
            result: false,
          },
    ],
  };
}

function envContract(): ProviderContract {
  return {
    provider_id: "env",
    name: "Environment Provider",
    description: "Reads environment variables (or configured overrides) under an allow/deny policy and size limits.",
    transport: "builtin",
    config_schema: {
      type: "object",
      properties: {
        allowlist: stringList("When set, only these keys may be read."),
        denylist: withDefault(stringList("Keys that may never be read; the denylist wins over the allowlist."), []),
        max_value_bytes: withDefault(nonNegativeInteger("Largest value, in bytes, that is returned."), 65536n),
        max_key_bytes: withDefault(nonNegativeInteger("Longest key, in bytes, that is accepted."), 255n),
        overrides: {
          type: "object",
          additionalProperties: { type: "string" },
          description: "Fixed key/value pairs; when set, the process environment is not read at all.",
        },
      },
      additionalProperties: false,
    },
    checks: [
      {
        check_id: "get",
        description: "The value of one environment variable, or no value when it is unset.",
        determinism: "external",
        params_required: true,
        params_schema: closedObject({ key: property("string", "Name of the environment variable.") }, ["key"]),
        result_schema: { oneOf: [{ type: "string" }, { type: "null" }] },
        allowed_comparators: [...TEXT_COMPARATORS],
        anchor_types: ["env"],
        content_types: ["text/plain"],
        examples: [{ description: "Which environment is this?", params: { key: "DEPLOY_ENV" }, result: "production" }],
      },
    ],
    notes: [
      "An unset key yields no value (exists is false); a key blocked by policy is a provider error.",
      "Keys and values are limited by max_key_bytes and max_value_bytes.",
    ],
  };
}

function jsonContract(): ProviderContract {
  return {
    provider_id: "json",
    name: "JSON Provider",
    description: "Reads a JSON or YAML file under the configured root and selects values with JSONPath.",
    transport: "builtin",
    config_schema: {
      type: "object",
      properties: {
        root: property("string", "Directory that every file path is resolved against (required)."),
        root_id: {
          type: "string",
          description: "Stable name of the root, used in evidence anchors (required).",
          pattern: "^[a-z0-9][a-z0-9_-]{0,63}$",
        },
        max_bytes: withDefault(nonNegativeInteger("Largest file, in bytes, that is read."), 1048576n),
        allow_yaml: withDefault(property("boolean", "Parse .yaml and .yml files as YAML."), true),
      },
      required: ["root", "root_id"],
      additionalProperties: false,
    },
    checks: [
      {
        check_id: "path",
        description: "The value selected by a JSONPath from a file (the whole document without a JSONPath).",
        determinism: "external",
        params_required: true,
        params_schema: closedObject(
          {
            file: property("string", "File path relative to the configured root."),
            jsonpath: property("string", "JSONPath selector; omit it to get the whole document."),
          },
          ["file"],
        ),
        result_schema: {
          description: "Whatever the selector matches, so its JSON type is only known at run time.",
          "x-decision-gate": { dynamic_type: true },
        },
        allowed_comparators: [...ALL_COMPARATORS],
        anchor_types: ["file_path_rooted"],
        content_types: ["application/json", "application/yaml"],
        examples: [
          {
            description: "The version field of a release manifest.",
            params: { file: "release.json", jsonpath: "$.version" },
            result: "2.4.0",
          },
          { description: "A whole document.", params: { file: "release.json" }, result: { version: "2.4.0" } },
        ],
      },
    ],
    notes: [
      "Paths must be relative and must resolve inside the configured root.",
      "Files larger than max_bytes are refused.",
      "File and JSONPath problems are reported in-band as an error with no value (for example jsonpath_not_found).",
    ],
  };
}

function httpContract(): ProviderContract {
  const urlParams = closedObject({ url: property("string", "Absolute https URL (http only when allowed).") }, ["url"]);
  const healthUrl = { url: "https://status.example.com/health" };
  return {
    provider_id: "http",
    name: "HTTP Provider",
    description: "Performs a bounded HTTP GET and reports the status code or a digest of the body.",
    transport: "builtin",
    config_schema: {
      type: "object",
      properties: {
        allow_http: withDefault(property("boolean", "Permit cleartext http:// URLs."), false),
        timeout_ms: withDefault(nonNegativeInteger("Whole-request timeout in milliseconds."), 5000n),
        max_response_bytes: withDefault(nonNegativeInteger("Largest response body, in bytes, that is read."), 1048576n),
        allowed_hosts: stringList("When set, only these hosts may be contacted."),
        user_agent: withDefault(property("string", "User-Agent header sent with each request."), "decision-gate/0.1"),
        hash_algorithm: withDefault(
          { type: "string", enum: ["sha256"], description: "Digest algorithm for body_hash." },
          "sha256",
        ),
      },
      additionalProperties: false,
    },
    checks: [
      {
        check_id: "status",
        description: "The HTTP status code of a GET request; redirects are not followed.",
        determinism: "external",
        params_required: true,
        params_schema: urlParams,
        result_schema: { type: "integer" },
        allowed_comparators: [...NUMERIC_COMPARATORS],
        anchor_types: ["url"],
        content_types: [...JSON_CONTENT],
        examples: [{ description: "Is the health endpoint up?", params: healthUrl, result: 200n }],
      },
      {
        check_id: "body_hash",
        description: "The SHA-256 digest of the body returned by a GET request.",
        determinism: "external",
        params_required: true,
        params_schema: structuredClone(urlParams),
        result_schema: {
          type: "object",
          required: ["algorithm", "value"],
          properties: {
            algorithm: { type: "string", enum: ["sha256"] },
            value: property("string", "Lowercase hex digest."),
          },
          additionalProperties: false,
        },
        allowed_comparators: [...PRESENCE_COMPARATORS],
        anchor_types: ["url"],
        content_types: [...JSON_CONTENT],
        examples: [
          {
            description: "Digest of the health endpoint's body.",
            params: { ...healthUrl },
            result: { algorithm: "sha256", value: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
          },
        ],
      },
    ],
    notes: [
      "Only https is used unless allow_http is set; allowed_hosts restricts the hosts contacted.",
      "Response bodies are size-limited before they are hashed.",
    ],
  };
}

function stringList(description: string): JsonObject {
  return { type: "array", items: { type: "string" }, description };
}

function nonNegativeInteger(description: string): JsonObject {
  return { type: "integer", minimum: 0n, description };
}
