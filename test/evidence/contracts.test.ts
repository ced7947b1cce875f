import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { COMPARATORS, type Comparator, ScenarioSpec } from "../../src/core/spec/schema.js";
import { decode } from "../../src/core/wire/common.js";
import { BUILTIN_PROVIDER_IDS, builtinContract, builtinContracts } from "../../src/evidence/contracts/builtin.js";
import { CapabilityError, CapabilityRegistry } from "../../src/evidence/contracts/capabilities.js";
import {
  compileJsonSchema,
  loadContract,
  loadContractFile,
  MAX_CAPABILITY_BYTES,
} from "../../src/evidence/contracts/load.js";
import { ProviderContract } from "../../src/evidence/contracts/schema.js";
import {
  combinedAllowance,
  DEFAULT_STRICT_OPTIONS,
  deriveTypeClasses,
  type StrictOptions,
  StrictValidationError,
  type TypeClass,
  validateConditionSchema,
  validatePrecheckStrict,
  validateSpecStrict,
} from "../../src/evidence/contracts/strict.js";
import { hashCanonical } from "../../src/json/hash.js";
import { parseJson } from "../../src/json/parse.js";
import type { JsonObject, JsonValue } from "../../src/json/value.js";
import { canonicalJson } from "../../src/json/write.js";
import { readSharedJson } from "../support/shared.js";

// ---------------------------------------------------------------------------------------------------------------
// Helpers

const TEMP_DIR = mkdtempSync(join(tmpdir(), "dg-contracts-"));
afterAll(() => rmSync(TEMP_DIR, { recursive: true, force: true }));

let fileCounter = 0;
function writeTemp(text: string): string {
  const path = join(TEMP_DIR, `contract-${++fileCounter}.json`);
  writeFileSync(path, text);
  return path;
}

function mcpCheck(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    check_id: "score",
    description: "A quality score.",
    determinism: "external",
    params_required: true,
    params_schema: { type: "object", required: ["target"], properties: { target: { type: "string" } } },
    result_schema: { type: "integer" },
    allowed_comparators: ["equals", "greater_than", "in_set", "exists"],
    anchor_types: ["custom"],
    content_types: ["application/json"],
    examples: [{ description: "Score of main.", params: { target: "main" }, result: 90 }],
    ...overrides,
  };
}

function mcpContract(overrides: Record<string, unknown> = {}, check = mcpCheck()): Record<string, unknown> {
  return {
    provider_id: "quality",
    name: "Quality",
    description: "Quality scores.",
    transport: "mcp",
    config_schema: { type: "object" },
    checks: [check],
    notes: [],
    ...overrides,
  };
}

function contractFile(overrides: Record<string, unknown> = {}): string {
  return writeTemp(JSON.stringify(mcpContract(overrides)));
}

function checkFile(overrides: Record<string, unknown>): string {
  return writeTemp(JSON.stringify(mcpContract({}, mcpCheck(overrides))));
}

async function loadError(path: string, providerId = "quality"): Promise<CapabilityError> {
  const error = await loadContractFile(path, providerId).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!(error instanceof CapabilityError)) throw new Error(`expected a CapabilityError, got ${String(error)}`);
  return error;
}

function specWith(...conditions: string[]): ScenarioSpec {
  const text = `{"scenario_id": "s", "namespace_id": 2, "spec_version": "v1", "default_tenant_id": null,
    "policies": [], "schemas": [],
    "stages": [{"stage_id": "only", "entry_packets": [], "gates": [], "advance_to": {"kind": "terminal"},
                "timeout": null, "on_timeout": "fail"}],
    "conditions": [${conditions.join(",")}]}`;
  return decode(ScenarioSpec, parseJson(text), "spec");
}

/** A condition as JSON text; `params` and `expected` are JSON text, omitted when undefined. */
function cond(id: string, check: string, comparator: Comparator, params?: string, expected?: string): string {
  const [providerId, checkId] = check.split(".");
  const paramsPart = params === undefined ? "" : `, "params": ${params}`;
  const expectedPart = expected === undefined ? "" : `, "expected": ${expected}`;
  return `{"condition_id": "${id}", "query": {"provider_id": "${providerId}", "check_id": "${checkId}"${paramsPart}},
    "comparator": "${comparator}"${expectedPart}, "policy_tags": []}`;
}

function capabilityFailure(registry: CapabilityRegistry, spec: ScenarioSpec): CapabilityError {
  try {
    registry.validateSpec(spec);
  } catch (error) {
    if (error instanceof CapabilityError) return error;
    throw error;
  }
  throw new Error("expected validateSpec to fail");
}

const builtins = () => CapabilityRegistry.withBuiltins();

// ---------------------------------------------------------------------------------------------------------------
// Built-in contracts

describe("built-in contracts", () => {
  it("decode as ProviderContract unchanged, in the reference's order", () => {
    const contracts = builtinContracts();
    expect(contracts.map((contract) => contract.provider_id)).toEqual(["time", "env", "json", "http"]);
    for (const contract of contracts) {
      expect(decode(ProviderContract, parseJson(canonicalJson(contract)), "contract")).toEqual(contract);
      expect(contract.transport).toBe("builtin");
    }
  });

  it("load (schemas compile, comparators canonical) and hash deterministically", () => {
    for (const providerId of BUILTIN_PROVIDER_IDS) {
      const contract = builtinContract(providerId) as ProviderContract;
      const first = loadContract(contract, "builtin");
      const second = loadContract(builtinContract(providerId) as ProviderContract, "builtin");
      expect(first.contractHash).toEqual(second.contractHash);
      expect(first.contractHash).toEqual(hashCanonical(parseJson(canonicalJson(contract))));
      expect(first.contractHash.value).toMatch(/^[0-9a-f]{64}$/);
    }
    const hashes = BUILTIN_PROVIDER_IDS.map((id) => builtins().contractOf(id).contractHash.value);
    expect(new Set(hashes).size).toBe(4);
  });

  const NUMERIC: Comparator[] = [
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
  const BOOLEAN: Comparator[] = ["equals", "not_equals", "in_set", "exists", "not_exists"];
  const TIME_ANCHORS = ["trigger_time_unix_millis", "trigger_time_logical"];
  const JSON_CONTENT = ["application/json"];
  const time = { determinism: "time_dependent", anchors: TIME_ANCHORS, contentTypes: JSON_CONTENT };
  const http = { required: true, determinism: "external", anchors: ["url"], contentTypes: JSON_CONTENT };
  const FACTS = {
    "time.now": { ...time, result: { type: "integer" }, comparators: NUMERIC, required: false },
    "time.after": { ...time, result: { type: "boolean" }, comparators: BOOLEAN, required: true },
    "time.before": { ...time, result: { type: "boolean" }, comparators: BOOLEAN, required: true },
    "env.get": {
      result: { oneOf: [{ type: "string" }, { type: "null" }] },
      comparators: ["equals", "not_equals", "contains", "in_set", "exists", "not_exists"],
      required: true,
      determinism: "external",
      anchors: ["env"],
      contentTypes: ["text/plain"],
    },
    "json.path": {
      result: { "x-decision-gate": { dynamic_type: true } },
      comparators: [...COMPARATORS],
      required: true,
      determinism: "external",
      anchors: ["file_path_rooted"],
      contentTypes: ["application/json", "application/yaml"],
    },
    "http.status": { ...http, result: { type: "integer" }, comparators: NUMERIC },
    "http.body_hash": {
      ...http,
      result: { type: "object", required: ["algorithm", "value"] },
      comparators: ["exists", "not_exists"],
    },
  } satisfies Record<string, { result: JsonObject; comparators: Comparator[]; required: boolean } & typeof time>;

  it.each(Object.entries(FACTS))("%s follows the reference's contract facts", (name, facts) => {
    const [providerId, checkId] = name.split(".") as [string, string];
    const check = builtins().checkOf(providerId, checkId).contract;
    expect(check.result_schema).toMatchObject(facts.result);
    expect(check.allowed_comparators).toEqual(facts.comparators);
    expect(check.params_required).toBe(facts.required);
    expect(check.determinism).toBe(facts.determinism);
    expect(check.anchor_types).toEqual(facts.anchors);
    expect(check.content_types).toEqual(facts.contentTypes);
  });

  it("have examples that satisfy their own params and result schemas", () => {
    for (const contract of builtinContracts()) {
      for (const check of contract.checks) {
        for (const example of check.examples) {
          expect(compileJsonSchema(check.params_schema)(example.params)).toBeUndefined();
          expect(compileJsonSchema(check.result_schema)(example.result)).toBeUndefined();
        }
      }
    }
  });

  it("allow-list only comparators the strict matrix does not forbid for their result schemas", () => {
    for (const contract of builtinContracts()) {
      for (const check of contract.checks) {
        const classes = deriveTypeClasses(check.result_schema);
        for (const comparator of check.allowed_comparators) {
          const label = `${contract.provider_id}.${check.check_id} ${comparator}`;
          expect(combinedAllowance(classes, comparator), label).not.toBe("forbidden");
        }
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Contract files

describe("contract files", () => {
  it("load a valid file with its hash, source and compiled checks", async () => {
    const path = contractFile({ unknown_key: "dropped" });
    const loaded = await loadContractFile(path, "quality");
    expect(loaded.source).toBe("file");
    expect(loaded.contract).not.toHaveProperty("unknown_key");
    expect(loaded.contractHash).toEqual(hashCanonical(loaded.contract));
    const check = loaded.checks.get("score");
    expect(check?.validateParams(parseJson(`{"target": "main"}`))).toBeUndefined();
    expect(check?.validateParams(parseJson(`{"target": 1}`))).toMatch(/value\/target must be string/);
    expect(check?.validateResult(90n)).toBeUndefined();
    expect(check?.validateResult("90")).toMatch(/must be integer/);
  });

  it("compile schemas independently, even when they declare the same $id", () => {
    const asString = compileJsonSchema({ $id: "https://example.com/shape", type: "string" });
    const asInteger = compileJsonSchema({ $id: "https://example.com/shape", type: "integer" });
    expect(asString("a")).toBeUndefined();
    expect(asInteger(1n)).toBeUndefined();
    expect(asInteger("a")).toMatch(/must be integer/);
  });

  it("keep the last of repeated check ids and tolerate repeated comparators", async () => {
    const first = mcpCheck({ description: "first", allowed_comparators: ["equals", "equals", "exists"] });
    const path = contractFile({ checks: [first, mcpCheck({ description: "second" })] });
    const loaded = await loadContractFile(path, "quality");
    expect(loaded.checks.get("score")?.contract.description).toBe("second");
    expect(loaded.contract.checks).toHaveLength(2);
  });

  const FAILURES: Array<[string, () => string, string, RegExp]> = [
    [
      "provider_id mismatch",
      () => contractFile({ provider_id: "other" }),
      "contract_invalid",
      /provider id mismatch \(expected quality, got other\)/,
    ],
    ["transport not mcp", () => contractFile({ transport: "builtin" }), "contract_invalid", /transport=mcp/],
    [
      "oversize file",
      () => contractFile({ notes: ["x".repeat(MAX_CAPABILITY_BYTES)] }),
      "contract_invalid",
      /exceeds size limit/,
    ],
    [
      "invalid JSON",
      () => writeTemp(`{"provider_id": "quality",}`),
      "contract_parse_failed",
      /parse failed: .*invalid JSON/,
    ],
    [
      "byte-order mark",
      () => writeTemp(`\uFEFF${JSON.stringify(mcpContract())}`),
      "contract_parse_failed",
      /parse failed/,
    ],
    [
      "missing field",
      () => writeTemp(JSON.stringify({ ...mcpContract(), notes: undefined })),
      "contract_parse_failed",
      /contract\.notes: missing field/,
    ],
    [
      "unknown comparator",
      () => checkFile({ allowed_comparators: ["matches"] }),
      "contract_parse_failed",
      /allowed_comparators/,
    ],
    [
      "params schema that fails to compile",
      () => checkFile({ params_schema: { type: "nonsense" } }),
      "schema_compile_failed",
      /schema compilation failed for quality\.score: /,
    ],
    [
      "result schema that fails to compile",
      () => checkFile({ result_schema: { $ref: "https://example.com/missing" } }),
      "schema_compile_failed",
      /quality\.score/,
    ],
    [
      "comparators out of canonical order",
      () => checkFile({ allowed_comparators: ["exists", "equals"] }),
      "contract_invalid",
      /check score comparators not in canonical order/,
    ],
    [
      "empty comparators",
      () => checkFile({ allowed_comparators: [] }),
      "contract_invalid",
      /check score missing allowed_comparators/,
    ],
    ["missing file", () => join(TEMP_DIR, "absent.json"), "contract_read_failed", /read failed: .*absent\.json/],
    ["directory", () => TEMP_DIR, "contract_read_failed", /read failed/],
    [
      "path component over 255 bytes",
      () => join(TEMP_DIR, `${"a".repeat(256)}.json`),
      "contract_path_invalid",
      /path component too long/,
    ],
    [
      "path over 4096 bytes",
      () => `/${`${"b".repeat(200)}/`.repeat(21)}c.json`,
      "contract_path_invalid",
      /path exceeds max length/,
    ],
    ["empty path", () => "", "contract_missing", /contract missing for quality/],
  ];

  it.each(FAILURES)("reject %s", async (_name, makePath, code, message) => {
    const error = await loadError(makePath());
    expect(error.code).toBe(code);
    expect(error.kind).toBe("invalid_params");
    expect(error.message.startsWith(`${code}: `)).toBe(true);
    expect(error.message).toMatch(message);
  });

  it("accept a file of exactly the size limit", async () => {
    const base = JSON.stringify(mcpContract({ notes: [""] }));
    const padded = JSON.stringify(mcpContract({ notes: ["p".repeat(MAX_CAPABILITY_BYTES - base.length)] }));
    expect(padded.length).toBe(MAX_CAPABILITY_BYTES);
    await expect(loadContractFile(writeTemp(padded), "quality")).resolves.toMatchObject({ source: "file" });
  });

  it("reject a contract whose canonical form exceeds the hash limit", () => {
    const contract = { ...(builtinContract("time") as ProviderContract), notes: ["n".repeat(MAX_CAPABILITY_BYTES)] };
    expect(() => loadContract(contract, "builtin")).toThrow(
      /^contract_hash_failed: contract hash failed for time: canonical json exceeds size limit/,
    );
  });

  it("refuse duplicate providers and unknown built-ins in the registry", async () => {
    const registry = builtins();
    expect(() => registry.registerBuiltin("env")).toThrow(/^duplicate_provider: duplicate provider id: env$/);
    expect(() => registry.registerBuiltin("s3")).toThrow(
      /^contract_missing: provider capability contract missing for s3$/,
    );
    const path = contractFile();
    registry.register(await loadContractFile(path, "quality"));
    await expect(loadContractFile(path, "quality").then((loaded) => registry.register(loaded))).rejects.toMatchObject({
      code: "duplicate_provider",
    });
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Capability validation (engine §1.4 step 4)

describe("capability validation", () => {
  const VALID = cond("ok", "time.after", "equals", `{"timestamp": 5}`, "true");

  const VIOLATIONS: Array<[string, string, string, RegExp]> = [
    ["provider_missing", cond("c1", "s3.get", "exists"), "provider_missing", /provider not registered: s3/],
    ["check_missing", cond("c1", "time.later", "exists"), "check_missing", /check not supported: time\.later/],
    [
      "params_missing (params_required)",
      cond("c1", "time.after", "equals", undefined, "true"),
      "params_missing",
      /check params required for time\.after/,
    ],
    ["params_missing (null params)", cond("c1", "env.get", "exists", "null"), "params_missing", /env\.get/],
    [
      "params_invalid (type)",
      cond("c1", "time.after", "equals", `{"timestamp": true}`, "true"),
      "params_invalid",
      /check params invalid for time\.after: .*must be integer/,
    ],
    [
      "params_invalid (extra key on time.now)",
      cond("c1", "time.now", "exists", `{"x": 1}`),
      "params_invalid",
      /must NOT have additional properties/,
    ],
    [
      "params_invalid (missing required)",
      cond("c1", "json.path", "exists", `{"jsonpath": "$"}`),
      "params_invalid",
      /must have required property 'file'/,
    ],
    [
      "expected_invalid (exists with expected)",
      cond("c1", "env.get", "exists", `{"key": "A"}`, `"x"`),
      "expected_invalid",
      /expected value must be omitted for exists/,
    ],
    [
      "expected_invalid (not_exists with expected)",
      cond("c1", "env.get", "not_exists", `{"key": "A"}`, "1"),
      "expected_invalid",
      /omitted for not_exists/,
    ],
    [
      "expected_invalid (in_set not an array)",
      cond("c1", "http.status", "in_set", `{"url": "https://x"}`, "200"),
      "expected_invalid",
      /expected array required for in_set/,
    ],
    [
      "expected_invalid (in_set element)",
      cond("c1", "http.status", "in_set", `{"url": "https://x"}`, `[200, "404"]`),
      "expected_invalid",
      /in_set element 1: value must be integer/,
    ],
    [
      "expected_invalid (missing expected)",
      cond("c1", "time.now", "greater_than"),
      "expected_invalid",
      /expected value required for greater_than/,
    ],
    [
      "expected_invalid (expected null is absent)",
      cond("c1", "env.get", "equals", `{"key": "A"}`, "null"),
      "expected_invalid",
      /expected value required for equals/,
    ],
    [
      "expected_invalid (wrong type)",
      cond("c1", "time.after", "equals", `{"timestamp": 5}`, "1"),
      "expected_invalid",
      /value must be boolean/,
    ],
    [
      "comparator_not_allowed",
      cond("c1", "time.after", "greater_than", `{"timestamp": 5}`, "true"),
      "comparator_not_allowed",
      /comparator not allowed for time\.after: greater_than/,
    ],
    [
      "comparator_not_allowed (body_hash)",
      cond("c1", "http.body_hash", "equals", `{"url": "https://x"}`, `{"algorithm": "sha256", "value": "ab"}`),
      "comparator_not_allowed",
      /http\.body_hash: equals/,
    ],
  ];

  it.each(VIOLATIONS)("%s", (_name, condition, code, message) => {
    const error = capabilityFailure(builtins(), specWith(VALID, condition));
    expect(error.code).toBe(code);
    expect(error.message.startsWith(`${code}: condition c1: `)).toBe(true);
    expect(error.message).toMatch(message);
  });

  it("accept valid conditions, including optional params and in_set arrays", () => {
    const spec = specWith(
      VALID,
      cond("now", "time.now", "greater_than", undefined, "5"),
      cond("now_params", "time.now", "less_than", "{}", "5"),
      cond("before", "time.before", "equals", `{"timestamp": "2024-01-01T00:00:00Z"}`, "false"),
      cond("env", "env.get", "in_set", `{"key": "A"}`, `["x", null]`),
      cond("env_contains", "env.get", "contains", `{"key": "A"}`, `"pro"`),
      cond("json", "json.path", "deep_equals", `{"file": "a.json"}`, `{"a": [1]}`),
      cond("status", "http.status", "in_set", `{"url": "https://x"}`, `[200, 204]`),
      cond("hash", "http.body_hash", "exists", `{"url": "https://x"}`),
    );
    expect(() => builtins().validateSpec(spec)).not.toThrow();
  });

  it("report the first violating condition in spec order", () => {
    const spec = specWith(VALID, cond("second", "time.later", "exists"), cond("third", "s3.get", "exists"));
    expect(capabilityFailure(builtins(), spec).message).toBe(
      "check_missing: condition second: check not supported: time.later",
    );
  });

  it("check params before expected and expected before the comparator", () => {
    const noParams = cond("c", "time.after", "greater_than", undefined, "1");
    expect(capabilityFailure(builtins(), specWith(noParams)).code).toBe("params_missing");
    const badExpected = cond("c", "time.after", "greater_than", `{"timestamp": 1}`, "1");
    expect(capabilityFailure(builtins(), specWith(badExpected)).code).toBe("expected_invalid");
  });

  it("validate evidence queries by provider, check and params only", () => {
    const registry = builtins();
    expect(() => registry.validateQuery({ provider_id: "time", check_id: "now" })).not.toThrow();
    expect(() => registry.validateQuery({ provider_id: "time", check_id: "after" })).toThrow(/^params_missing: /);
    expect(() =>
      registry.validateQuery({ provider_id: "env", check_id: "get", params: parseJson(`{"key": 1}`) as JsonObject }),
    ).toThrow(/^params_invalid: check params invalid for env\.get: /);
    expect(() => registry.validateQuery({ provider_id: "nope", check_id: "x" })).toThrow(/^provider_missing: /);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Discovery views against the tool contracts (tooling.json)

describe("discovery views", () => {
  const tools = readSharedJson("fixtures/reference/contract/tooling.json") as unknown as Array<{
    name: string;
    output_schema: JsonValue;
  }>;
  const outputSchema = (name: string) => {
    const tool = tools.find((candidate) => candidate.name === name);
    if (tool === undefined) throw new Error(`missing tool ${name}`);
    return compileJsonSchema(tool.output_schema);
  };

  it("providers_list items are sorted and match the output schema", async () => {
    const registry = builtins();
    registry.register(await loadContractFile(contractFile(), "quality"));
    const providers = registry.listProviders();
    expect(providers).toEqual([
      { provider_id: "env", transport: "builtin", checks: ["get"] },
      { provider_id: "http", transport: "builtin", checks: ["body_hash", "status"] },
      { provider_id: "json", transport: "builtin", checks: ["path"] },
      { provider_id: "quality", transport: "mcp", checks: ["score"] },
      { provider_id: "time", transport: "builtin", checks: ["after", "before", "now"] },
    ]);
    expect(outputSchema("providers_list")({ providers } as unknown as JsonValue)).toBeUndefined();
  });

  it("provider_contract_get and provider_check_schema_get views match their output schemas", () => {
    const registry = builtins();
    for (const providerId of BUILTIN_PROVIDER_IDS) {
      const view = registry.contractView(providerId);
      expect(view).toMatchObject({ provider_id: providerId, source: "builtin", version: null });
      expect(outputSchema("provider_contract_get")(view as unknown as JsonValue)).toBeUndefined();
      for (const check of view.contract.checks) {
        const checkView = registry.checkSchemaView(providerId, check.check_id);
        expect(checkView.contract_hash).toEqual(view.contract_hash);
        expect(outputSchema("provider_check_schema_get")(checkView as unknown as JsonValue)).toBeUndefined();
      }
    }
    expect(() => registry.checkSchemaView("env", "set")).toThrow(/^check_missing: /);
    expect(() => registry.contractView("nope")).toThrow(/^provider_missing: /);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Strict comparator/type validation (engine §3.5)

const ALL_ON: StrictOptions = { enableLexicographic: true, enableDeepEquals: true };

const CLASS_CASES: Record<TypeClass, { schema: JsonObject; sample: JsonValue }> = {
  Boolean: { schema: { type: "boolean" }, sample: true },
  Integer: { schema: { type: "integer" }, sample: 5n },
  Number: { schema: { type: "number" }, sample: 1.5 },
  String: { schema: { type: "string" }, sample: "abc" },
  Date: { schema: { type: "string", format: "date" }, sample: "2024-01-01" },
  DateTime: { schema: { type: "string", format: "date-time" }, sample: "2024-01-01T00:00:00Z" },
  Uuid: { schema: { type: "string", format: "uuid" }, sample: "123e4567-e89b-12d3-a456-426614174000" },
  Enum: { schema: { enum: ["red", "green"] }, sample: "red" },
  ArrayScalar: { schema: { type: "array", items: { type: "string" } }, sample: ["a"] },
  ArrayComplex: { schema: { type: "array", items: { type: "object" } }, sample: [{}] },
  Object: { schema: { type: "object" }, sample: {} },
  Null: { schema: { type: "null" }, sample: null },
  Dynamic: { schema: { "x-decision-gate": { dynamic_type: true } }, sample: "anything" },
};

const GROUPS: Record<string, Comparator[]> = {
  "eq/ne": ["equals", "not_equals"],
  "gt/gte/lt/lte": ["greater_than", "greater_than_or_equal", "less_than", "less_than_or_equal"],
  "lex_*": ["lex_greater_than", "lex_greater_than_or_equal", "lex_less_than", "lex_less_than_or_equal"],
  contains: ["contains"],
  in_set: ["in_set"],
  "deep_*": ["deep_equals", "deep_not_equals"],
  "exists/not_exists": ["exists", "not_exists"],
};

type Cell = "Y" | "opt" | "-";
/** The §3.5 table as printed: columns in the order of GROUPS. */
const TABLE: Record<TypeClass, Cell[]> = {
  Boolean: ["Y", "-", "-", "-", "Y", "-", "Y"],
  Integer: ["Y", "Y", "-", "-", "Y", "-", "Y"],
  Number: ["Y", "Y", "-", "-", "Y", "-", "Y"],
  String: ["Y", "-", "opt", "Y", "Y", "-", "Y"],
  Date: ["Y", "Y", "-", "-", "Y", "-", "Y"],
  DateTime: ["Y", "Y", "-", "-", "Y", "-", "Y"],
  Uuid: ["Y", "-", "-", "-", "Y", "-", "Y"],
  Enum: ["Y", "-", "-", "-", "Y", "-", "Y"],
  ArrayScalar: ["-", "-", "-", "Y", "-", "opt", "Y"],
  ArrayComplex: ["-", "-", "-", "-", "-", "opt", "Y"],
  Object: ["-", "-", "-", "-", "-", "opt", "Y"],
  Null: ["Y", "-", "-", "-", "-", "-", "Y"],
  Dynamic: ["Y", "Y", "Y", "Y", "Y", "Y", "Y"],
};

function expectedFor(comparator: Comparator, sample: JsonValue): JsonValue | null {
  if (comparator === "exists" || comparator === "not_exists") return null;
  return comparator === "in_set" ? [sample] : sample;
}

function withListed(schema: JsonObject, comparators: Comparator[]): JsonObject {
  const meta = (schema["x-decision-gate"] ?? {}) as JsonObject;
  return { ...schema, "x-decision-gate": { ...meta, allowed_comparators: comparators } };
}

/** The strict check of a condition `c` with this comparator and expected value against `schema`. */
function validateComparatorForSchema(
  schema: JsonValue,
  comparator: Comparator,
  expected: JsonValue | null,
  options: StrictOptions,
): void {
  validateConditionSchema({ condition_id: "c", comparator, expected }, schema, options, "test schema");
}

function strictFailure(action: () => void): string {
  try {
    action();
  } catch (error) {
    if (error instanceof StrictValidationError) return error.message;
    throw error;
  }
  throw new Error("expected a StrictValidationError");
}

const CELLS = (Object.keys(TABLE) as TypeClass[]).flatMap((typeClass) =>
  Object.keys(GROUPS).map((group, column) => ({ typeClass, group, cell: TABLE[typeClass][column] as Cell })),
);

describe("strict matrix (lex and deep enabled)", () => {
  it.each(CELLS)("$typeClass × $group is $cell", ({ typeClass, group, cell }) => {
    const { schema, sample } = CLASS_CASES[typeClass];
    expect(deriveTypeClasses(schema)).toEqual([typeClass]);
    for (const comparator of GROUPS[group] ?? []) {
      const expected = expectedFor(comparator, sample);
      const validate = (target: JsonObject) => () => validateComparatorForSchema(target, comparator, expected, ALL_ON);
      if (cell === "Y") {
        expect(combinedAllowance([typeClass], comparator)).toBe("allowed");
        if (typeClass === "Null" && expected === null && group === "eq/ne") {
          // The class allows it, but `expected: null` reads as "no expected value": equals null is inexpressible.
          expect(strictFailure(validate(schema))).toBe(`condition c comparator ${comparator} requires expected value`);
        } else {
          expect(validate(schema)).not.toThrow();
        }
      } else if (cell === "opt") {
        expect(combinedAllowance([typeClass], comparator)).toBe("opt_in");
        expect(strictFailure(validate(schema))).toBe(
          `condition c comparator ${comparator} requires explicit opt-in (type class ${typeClass} in test schema; list it in x-decision-gate.allowed_comparators)`,
        );
        expect(validate(withListed(schema, [comparator]))).not.toThrow();
        expect(strictFailure(validate(withListed(schema, ["exists"])))).toBe(
          `condition c comparator ${comparator} not in allowed_comparators (test schema)`,
        );
      } else {
        expect(combinedAllowance([typeClass], comparator)).toBe("forbidden");
        expect(strictFailure(validate(schema))).toBe(
          `condition c comparator ${comparator} not allowed for schema type (type class ${typeClass} in test schema)`,
        );
      }
    }
  });
});

describe("strict config gates", () => {
  const LEX_AND_DEEP = [...(GROUPS["lex_*"] ?? []), ...(GROUPS["deep_*"] ?? [])];

  it.each(Object.keys(CLASS_CASES) as TypeClass[])("reject every lex_* and deep_* for %s by default", (typeClass) => {
    const { schema, sample } = CLASS_CASES[typeClass];
    for (const comparator of LEX_AND_DEEP) {
      const message = strictFailure(() =>
        validateComparatorForSchema(withListed(schema, ["exists"]), comparator, sample, DEFAULT_STRICT_OPTIONS),
      );
      expect(message).toMatch(
        new RegExp(`^condition c comparator ${comparator} is disabled by config \\(validation\\.enable_`),
      );
    }
  });

  it("gate lex and deep separately", () => {
    const dynamic = CLASS_CASES.Dynamic.schema;
    const lexOnly = { enableLexicographic: true, enableDeepEquals: false };
    expect(() => validateComparatorForSchema(dynamic, "lex_less_than", "b", lexOnly)).not.toThrow();
    expect(strictFailure(() => validateComparatorForSchema(dynamic, "deep_equals", {}, lexOnly))).toMatch(
      /enable_deep_equals=false/,
    );
  });

  it("reject json.path lex/deep conditions at define time by default, accept them when enabled", () => {
    const registry = builtins();
    const spec = specWith(
      cond("fine", "json.path", "equals", `{"file": "a.json"}`, "1"),
      cond("lex", "json.path", "lex_greater_than", `{"file": "a.json"}`, `"a"`),
    );
    expect(() => registry.validateSpec(spec)).not.toThrow();
    expect(strictFailure(() => validateSpecStrict(spec, registry, DEFAULT_STRICT_OPTIONS))).toBe(
      "condition lex comparator lex_greater_than is disabled by config (validation.enable_lexicographic=false)",
    );
    expect(() => validateSpecStrict(spec, registry, ALL_ON)).not.toThrow();
    const deep = specWith(cond("deep", "json.path", "deep_not_equals", `{"file": "a.json"}`, "[1]"));
    expect(strictFailure(() => validateSpecStrict(deep, registry, DEFAULT_STRICT_OPTIONS))).toMatch(
      /^condition deep comparator deep_not_equals is disabled by config \(validation\.enable_deep_equals=false\)$/,
    );
  });

  it("reject allowed_comparators lists that are empty, malformed, disabled or forbidden", () => {
    const string = CLASS_CASES.String.schema;
    const check = (schema: JsonObject, options = ALL_ON) =>
      strictFailure(() => validateComparatorForSchema(schema, "equals", "a", options));
    expect(check(withListed(string, []))).toBe("allowed_comparators must not be empty (condition c, test schema)");
    expect(check({ ...string, "x-decision-gate": { allowed_comparators: ["matches"] } })).toMatch(
      /^allowed_comparators invalid: expected an array of comparator names/,
    );
    expect(check({ ...string, "x-decision-gate": "yes" })).toBe(
      "x-decision-gate must be an object (condition c, test schema)",
    );
    expect(check(withListed(string, ["equals", "lex_less_than"]), DEFAULT_STRICT_OPTIONS)).toBe(
      "allowed_comparators includes disabled comparator lex_less_than (validation.enable_lexicographic=false; condition c, test schema)",
    );
    expect(check(withListed(string, ["equals", "greater_than"]))).toBe(
      "allowed_comparators includes comparator greater_than not valid for schema (type class String; condition c, test schema)",
    );
    expect(() => validateComparatorForSchema(withListed(string, ["equals"]), "equals", "a", ALL_ON)).not.toThrow();
    expect(check(withListed(string, ["in_set"]))).toBe(
      "condition c comparator equals not in allowed_comparators (test schema)",
    );
  });
});

describe("strict type classes", () => {
  it("drop null from type arrays and intersect the remaining classes", () => {
    expect(deriveTypeClasses({ type: ["integer", "null"] })).toEqual(["Integer"]);
    expect(deriveTypeClasses({ type: ["null"] })).toEqual(["Null"]);
    expect(deriveTypeClasses({ type: ["string", "integer", "null"] })).toEqual(["String", "Integer"]);
    const mixed = { type: ["string", "integer"] };
    expect(() => validateComparatorForSchema({ type: ["integer", "null"] }, "greater_than", 1n, ALL_ON)).not.toThrow();
    expect(() => validateComparatorForSchema(mixed, "equals", "a", ALL_ON)).not.toThrow();
    expect(strictFailure(() => validateComparatorForSchema(mixed, "greater_than", 1n, ALL_ON))).toBe(
      "condition c comparator greater_than not allowed for schema type (type classes String & Integer in test schema)",
    );
    expect(strictFailure(() => validateComparatorForSchema(mixed, "contains", "a", ALL_ON))).toMatch(/not allowed/);
  });

  it("intersect oneOf/anyOf variants after dropping null-only ones", () => {
    expect(deriveTypeClasses({ oneOf: [{ type: "string" }, { type: "null" }] })).toEqual(["String"]);
    expect(deriveTypeClasses({ anyOf: [{ type: "integer" }, { enum: [null] }, { type: "number" }] })).toEqual([
      "Integer",
      "Number",
    ]);
    expect(deriveTypeClasses({ oneOf: [{ type: "null" }, { enum: [null] }] })).toEqual(["Null", "Null"]);
    expect(deriveTypeClasses({ oneOf: [{ type: "string", format: "date" }, { type: "string" }] })).toEqual([
      "Date",
      "String",
    ]);
    const union = { oneOf: [{ type: "integer" }, { type: "string" }] };
    expect(strictFailure(() => validateComparatorForSchema(union, "greater_than", 1n, ALL_ON))).toMatch(
      /type classes Integer & String/,
    );
    expect(() => validateComparatorForSchema(union, "in_set", [1n, "a"], ALL_ON)).not.toThrow();
    expect(() => deriveTypeClasses({ oneOf: [] })).toThrow("schema union must have at least one option");
    expect(() => deriveTypeClasses({ oneOf: [{ enum: [] }] })).toThrow("enum must contain at least one value");
  });

  it("classify enums: non-empty scalars of one JSON type", () => {
    expect(deriveTypeClasses({ enum: [1n, 2.5] })).toEqual(["Enum"]);
    expect(deriveTypeClasses({ enum: [null] })).toEqual(["Null"]);
    expect(deriveTypeClasses({ enum: ["a"], type: "integer" })).toEqual(["Enum"]);
    expect(() => deriveTypeClasses({ enum: [] })).toThrow("enum must contain at least one value");
    expect(() => deriveTypeClasses({ enum: ["a", 1n] })).toThrow("enum values must share the same scalar type");
    expect(() => deriveTypeClasses({ enum: ["a", null] })).toThrow("enum values must share the same scalar type");
    expect(() => deriveTypeClasses({ enum: [["a"]] })).toThrow("enum values must be scalar types");
    expect(() => deriveTypeClasses({ enum: [{}] })).toThrow("enum values must be scalar types");
  });

  it("classify arrays by their items", () => {
    expect(deriveTypeClasses({ type: "array" })).toEqual(["ArrayComplex"]);
    expect(deriveTypeClasses({ type: "array", items: { enum: [1n] } })).toEqual(["ArrayScalar"]);
    expect(deriveTypeClasses({ type: "array", items: { type: ["string", "null"] } })).toEqual(["ArrayScalar"]);
    expect(deriveTypeClasses({ type: "array", items: { type: "array" } })).toEqual(["ArrayComplex"]);
    expect(deriveTypeClasses({ type: "array", items: { oneOf: [{ type: "string" }] } })).toEqual(["ArrayComplex"]);
    expect(deriveTypeClasses({ type: "array", items: { "x-decision-gate": { dynamic_type: true } } })).toEqual([
      "ArrayComplex",
    ]);
  });

  it("reject schemas without a type declaration or with unusable types", () => {
    expect(() => deriveTypeClasses({})).toThrow("schema missing type declaration");
    expect(() => deriveTypeClasses({ description: "anything" })).toThrow("schema missing type declaration");
    expect(() => deriveTypeClasses(true)).toThrow("schema missing type declaration");
    expect(() => deriveTypeClasses({ "x-decision-gate": { dynamic_type: false } })).toThrow(
      "schema missing type declaration",
    );
    expect(() => deriveTypeClasses({ "x-decision-gate": { dynamic_type: "yes" } })).toThrow(
      "x-decision-gate.dynamic_type must be boolean",
    );
    expect(() => deriveTypeClasses({ type: "decimal" })).toThrow("unsupported schema type: decimal");
    expect(() => deriveTypeClasses({ type: 5n })).toThrow("schema type must be string or array");
    expect(() => deriveTypeClasses({ type: [] })).toThrow("schema type array must not be empty");
    expect(() => deriveTypeClasses({ type: ["string", 1n] })).toThrow("schema type array must contain strings");
  });

  it("check expected values like the capability check", () => {
    const integer = CLASS_CASES.Integer.schema;
    const fail = (comparator: Comparator, expected: JsonValue | null) =>
      strictFailure(() => validateComparatorForSchema(integer, comparator, expected, ALL_ON));
    expect(fail("exists", 1n)).toBe("condition c comparator exists does not accept expected values");
    expect(fail("equals", null)).toBe("condition c comparator equals requires expected value");
    expect(fail("in_set", 1n)).toBe("condition c comparator in_set requires expected array");
    expect(fail("in_set", [1n, "2"])).toMatch(
      /^condition c expected value invalid: .* \(in_set element 1; type class Integer in test schema\)$/,
    );
    expect(fail("greater_than", 1.5)).toMatch(
      /^condition c expected value invalid: value must be integer \(type class Integer in test schema\)$/,
    );
    expect(() => validateComparatorForSchema(integer, "in_set", [], ALL_ON)).not.toThrow();
    expect(
      strictFailure(() => validateComparatorForSchema({ type: "integer", minimum: "x" }, "equals", 1n, ALL_ON)),
    ).toMatch(/^invalid schema: .* \(condition c, test schema\)$/);
  });

  it("name the condition and check in spec-level failures, in spec order", () => {
    const registry = builtins();
    const spec = specWith(
      cond("ok", "time.now", "greater_than", undefined, "1"),
      cond("bad", "env.get", "greater_than", `{"key": "A"}`, `"x"`),
      cond("worse", "time.after", "lex_less_than", `{"timestamp": 1}`, "true"),
    );
    expect(strictFailure(() => validateSpecStrict(spec, registry, ALL_ON))).toBe(
      "condition bad comparator greater_than not allowed for schema type (type class String in env.get result schema)",
    );
  });
});

describe("strict validation messages start with the reference's wording", () => {
  const string: JsonObject = { type: "string" };
  const integer: JsonObject = { type: "integer" };
  const array: JsonObject = { type: "array", items: { type: "string" } };
  const one = specWith(cond("c", "time.now", "equals", undefined, "1"));
  const two = specWith(cond("c", "time.now", "equals", undefined, "1"), cond("d", "time.now", "exists"));
  const onSchema =
    (schema: JsonValue, comparator: Comparator, expected: JsonValue | null, options = ALL_ON) =>
    () =>
      validateComparatorForSchema(schema, comparator, expected, options);
  const onShape = (spec: ScenarioSpec, shape: JsonValue) => () => validatePrecheckStrict(spec, shape, ALL_ON);

  const TEMPLATES: Array<[string, () => void]> = [
    [
      "condition c comparator lex_greater_than is disabled by config",
      onSchema(string, "lex_greater_than", "a", DEFAULT_STRICT_OPTIONS),
    ],
    [
      "condition c comparator greater_than not allowed for schema type",
      onSchema({ type: "boolean" }, "greater_than", true),
    ],
    ["condition c comparator lex_greater_than requires explicit opt-in", onSchema(string, "lex_greater_than", "a")],
    [
      "condition c comparator lex_greater_than not in allowed_comparators",
      onSchema(withListed(string, ["equals"]), "lex_greater_than", "a"),
    ],
    [
      "condition c comparator contains not in allowed_comparators",
      onSchema(withListed(string, ["equals"]), "contains", "a"),
    ],
    [
      "allowed_comparators includes disabled comparator deep_equals",
      onSchema(withListed(array, ["deep_equals"]), "deep_equals", ["a"], DEFAULT_STRICT_OPTIONS),
    ],
    [
      "allowed_comparators includes comparator greater_than not valid for schema",
      onSchema(withListed(string, ["equals", "greater_than"]), "equals", "a"),
    ],
    ["allowed_comparators must not be empty", onSchema(withListed(string, []), "equals", "a")],
    [
      "allowed_comparators invalid: ",
      onSchema({ ...string, "x-decision-gate": { allowed_comparators: "equals" } }, "equals", "a"),
    ],
    ["condition c comparator exists does not accept expected values", onSchema(integer, "exists", 1n)],
    ["condition c comparator in_set requires expected array", onSchema(integer, "in_set", 1n)],
    ["condition c comparator in_set requires expected array", onSchema(integer, "in_set", null)],
    ["condition c comparator equals requires expected value", onSchema(integer, "equals", null)],
    // A JSON null expected value reads as none (as the reference decodes it), so "does not accept null expected
    // values" cannot arise: an ordering comparator with `expected: null` lacks an expected value.
    ["condition c comparator greater_than requires expected value", onSchema(integer, "greater_than", null)],
    ["condition c expected value invalid: ", onSchema(integer, "equals", "x")],
    ["condition c expected value invalid: ", onSchema(integer, "in_set", [1n, "x"])],
    ["condition c missing from data shape schema", onShape(one, { type: "object", properties: { d: integer } })],
    [
      "schema allows untyped additionalProperties for condition c",
      onShape(one, { type: "object", properties: {}, additionalProperties: true }),
    ],
    ["non-object data shape requires exactly one condition", onShape(two, integer)],
    ["schema cannot define both oneOf and anyOf", onShape(one, { oneOf: [integer], anyOf: [integer] })],
    ["schema oneOf must contain at least one option", onShape(one, { oneOf: [] })],
    ["x-decision-gate must be an object", onSchema({ ...string, "x-decision-gate": [] }, "equals", "a")],
    ["schema missing type declaration", onSchema({ description: "untyped" }, "equals", "a")],
    ["unsupported schema type: decimal", onSchema({ type: "decimal" }, "equals", 1n)],
    ["invalid schema: ", onSchema({ type: "integer", minimum: "x" }, "equals", 1n)],
  ];

  it.each(TEMPLATES)("%s", (wording, action) => {
    let failure: unknown;
    try {
      action();
    } catch (error) {
      failure = error;
    }
    expect(failure).toBeInstanceOf(StrictValidationError);
    const error = failure as StrictValidationError;
    expect(error.kind).toBe("invalid_params");
    expect(error.message.startsWith(wording), error.message).toBe(true);
  });

  it("accept a data shape that types every condition, by property or by additionalProperties", () => {
    expect(onShape(two, { type: "object", properties: { c: integer }, additionalProperties: integer })).not.toThrow();
    expect(onShape(one, integer)).not.toThrow();
    expect(onShape(one, { oneOf: [{ type: "null" }, { type: "object", properties: { c: integer } }] })).not.toThrow();
    expect(strictFailure(onShape(one, { type: "object", properties: { c: string } }))).toBe(
      "condition c expected value invalid: value must be string (type class String in data shape)",
    );
  });
});
