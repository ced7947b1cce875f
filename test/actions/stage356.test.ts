import { createHash, generateKeyPairSync } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import { afterAll, describe, expect, it } from "vitest";
import { evaluateStage356 } from "../../src/actions/stage356.js";
import type { Stage356Inputs } from "../../src/actions/stage356-format.js";
import { type Stage357Result, stage357Files } from "../../src/actions/stage357-documents.js";
import { InvalidInputError } from "../../src/core/errors.js";
import { decode } from "../../src/core/wire/common.js";
import { parseJson } from "../../src/json/parse.js";
import type { JsonValue } from "../../src/json/value.js";
import { RUNTIME_ACTION_TOOL } from "../../src/server/tools/actions.js";
import { catalogEntry, type ToolDefinition } from "../../src/server/tools/catalog.js";
import type { ToolCall } from "../../src/server/tools/tool.js";
import { runCli } from "../support/server-process.js";
import { sharedPath } from "../support/shared.js";

const RUNTIME = sharedPath("fixtures/stage356/docs/runtime/");
const KEYS = sharedPath("fixtures/stage356/docs/keys/");
const RECEIPT_FILE = `${RUNTIME}stage356_runtime_execution_receipt.json`;
const GATE_FILE = `${RUNTIME}stage356_runtime_fail_closed_gate.json`;
const RECEIPT = readFileSync(RECEIPT_FILE);
const GATE = readFileSync(GATE_FILE);
const STAGE355 = {
  resultBytes: readFileSync(`${KEYS}stage355_revocation_enforcement_result.json`),
  statusBytes: readFileSync(`${KEYS}stage355_key_status_verification.json`),
};
const CREATED_AT = "2026-07-01T12:00:00Z";
const UPSTREAM_RECEIPT_SHA256 = "39f95a4a0a4602d6a73a8062fdc9ae7aa5fffb67edb98f88c776ad6259916636";
const UPSTREAM_ENTRY_HASH = "f420837afc3755c69b09528ef7e5c6cc5c4fbdb3b89e5bc5cfad2060eb4dcab6";
const ALL_CAPABILITIES = [
  "private_runner",
  "public_metadata_verification",
  "secret_material_access",
  "unsafe_payload_fetch",
];
const NO_GITHUB = { GITHUB_ACTIONS: "" };

const temporaryDirs: string[] = [];
afterAll(() => {
  for (const dir of temporaryDirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "dg-actions-"));
  temporaryDirs.push(dir);
  return dir;
}

function evaluate(overrides: Partial<Stage356Inputs> = {}): Stage357Result {
  return evaluateStage356({
    receiptBytes: RECEIPT,
    gateBytes: GATE,
    githubActions: false,
    enforce: false,
    createdAt: CREATED_AT,
    paths: { receipt: RECEIPT_FILE, gate: GATE_FILE },
    ...overrides,
  });
}

function failedChecks(result: Stage357Result): string[] {
  return Object.keys(result.receipt.checks).filter((name) => !result.receipt.checks[name]);
}

function expectTerminated(result: Stage357Result, check: string): void {
  expect(result.receipt.runtime_decision).toBe("block");
  expect(result.receipt.action).toBe("terminate");
  expect(result.receipt.capabilities).toEqual({ allowed: [], isolated: ALL_CAPABILITIES });
  expect(result.receipt.checks[check]).toBe(false);
  expect(result.receipt.reasons).toContain(`check_failed:${check}`);
}

function sha256(bytes: Uint8Array | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** An independent Python-compatible canonical hash (sorted keys, compact), for building and checking documents. */
function pythonSha256(value: unknown): string {
  const canonical = (item: unknown): string => {
    if (Array.isArray(item)) return `[${item.map(canonical).join(",")}]`;
    if (item !== null && typeof item === "object") {
      const object = item as Record<string, unknown>;
      return `{${Object.keys(object)
        .sort()
        .map((key) => `${JSON.stringify(key)}:${canonical(object[key])}`)
        .join(",")}}`;
    }
    return JSON.stringify(item);
  };
  return sha256(canonical(value));
}

function without(object: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(object).filter(([key]) => !keys.includes(key)));
}

// biome-ignore lint/suspicious/noExplicitAny: test documents are edited freely
type Document = Record<string, any>;

/** The shipped receipt and gate after `edit`, with every hash recomputed as Stage356 would. */
function rewritten(
  edit: (receipt: Document, gate: Document) => void,
): Pick<Stage356Inputs, "receiptBytes" | "gateBytes"> {
  const receipt: Document = JSON.parse(RECEIPT.toString("utf8"));
  const gate: Document = JSON.parse(GATE.toString("utf8"));
  edit(receipt, gate);
  gate.entry_hash = pythonSha256(without(gate, ["entry_hash", "runtime_decision", "reasons"]));
  receipt.entry_hash = gate.entry_hash;
  receipt.receipt_sha256 = pythonSha256(without(receipt, ["receipt_sha256"]));
  return { receiptBytes: pretty(receipt), gateBytes: pretty(gate) };
}

function onBoth(edit: (document: Document) => void) {
  return (receipt: Document, gate: Document) => {
    edit(receipt);
    edit(gate);
  };
}

function pretty(value: unknown): Buffer {
  return Buffer.from(`${JSON.stringify(value, null, 2)}\n`);
}

/** The file with one occurrence of `from` replaced: a byte-level edit that leaves every hash as declared. */
function edited(bytes: Buffer, from: string, to: string): Buffer {
  const text = bytes.toString("utf8");
  expect(text).toContain(from);
  return Buffer.from(text.replace(from, to));
}

describe("Stage356 receipt → Stage357 action", () => {
  it("maps the shipped warn receipt to isolate_and_continue, bound to the upstream receipt", () => {
    const result = evaluate();
    const { receipt } = result;
    expect(failedChecks(result)).toEqual([]);
    expect(receipt).toMatchObject({
      stage: 357,
      source_stage: 356,
      created_at: CREATED_AT,
      previous_hash: UPSTREAM_ENTRY_HASH,
      source_receipt_path: RECEIPT_FILE,
      source_receipt_sha256: UPSTREAM_RECEIPT_SHA256,
      source_receipt_file_sha256: sha256(RECEIPT),
      runtime_decision: "warn",
      action: "isolate_and_continue",
      capabilities: {
        allowed: ["public_metadata_verification"],
        isolated: ["private_runner", "unsafe_payload_fetch", "secret_material_access"],
      },
      enforcement: { mode: "report_only", exit_code: 0 },
      violations: [],
      reasons: ["local_context_detected_warn_only", "runtime_allowed_with_local_warning"],
      canonicalization: "json-sorted-keys-compact-utf8",
    });
    expect(receipt.entry_hash).toBe(pythonSha256(without(receipt, ["entry_hash", "receipt_sha256"])));
    expect(receipt.receipt_sha256).toBe(pythonSha256(without(receipt, ["receipt_sha256"])));
    expect(Object.keys(receipt)).toEqual([
      "stage",
      "engine",
      "source_stage",
      "created_at",
      "previous_hash",
      "source_receipt_path",
      "source_receipt_sha256",
      "source_receipt_file_sha256",
      "runtime_decision",
      "action",
      "capabilities",
      "enforcement",
      "checks",
      "violations",
      "reasons",
      "canonicalization",
      "entry_hash",
      "receipt_sha256",
    ]);
  });

  it("enforcement changes the mode, not the action, of a warn receipt", () => {
    expect(evaluate({ enforce: true }).receipt.enforcement).toEqual({ mode: "enforce", exit_code: 0 });
    expect(evaluate({ githubActions: true }).receipt.enforcement).toEqual({ mode: "enforce", exit_code: 0 });
  });

  it("writes the policy with the mapping, capability sets and enforcement rules", () => {
    const { policy } = evaluate();
    expect(policy.decision_actions).toEqual({ allow: "continue", warn: "isolate_and_continue", block: "terminate" });
    expect(policy.action_capabilities.isolate_and_continue).toEqual(evaluate().receipt.capabilities);
    expect(policy.enforcement.enforce_when).toEqual(["--enforce", "GITHUB_ACTIONS=true"]);
    expect(policy.verification_checks).toEqual(Object.keys(evaluate().receipt.checks));
  });

  it.each([
    [
      "receipt byte",
      { receiptBytes: edited(RECEIPT, "runtime_allowed_with_local_warning", "runtime_allowed") },
      "receipt_sha256_valid",
    ],
    [
      "gate byte",
      { gateBytes: edited(GATE, '"github_run_id": null', '"github_run_id": "7"') },
      "gate_entry_hash_valid",
    ],
    ["declared receipt_sha256", { receiptBytes: edited(RECEIPT, "9916636", "9916637") }, "receipt_sha256_valid"],
    ["receipt entry_hash", { receiptBytes: edited(RECEIPT, "4dcab6", "4dcab7") }, "entry_hash_bound"],
    ["gate entry_hash", { gateBytes: edited(GATE, "4dcab6", "4dcab7") }, "gate_entry_hash_valid"],
    [
      "previous hash",
      { gateBytes: edited(GATE, '"previous_hash": "cd30', '"previous_hash": "dd30') },
      "previous_hash_bound",
    ],
    ["decision in the receipt", { receiptBytes: edited(RECEIPT, '"warn"', '"allow"') }, "decision_consistent"],
    ["decision in the gate", { gateBytes: edited(GATE, '"warn"', '"allow"') }, "decision_consistent"],
    ["missing receipt", { receiptBytes: null }, "receipt_readable"],
    ["missing gate", { gateBytes: null }, "gate_readable"],
    ["unparsable receipt", { receiptBytes: Buffer.from('{"stage": 356,') }, "receipt_parsed"],
    ["float in the receipt", { receiptBytes: edited(RECEIPT, '"stage": 356', '"stage": 356.0') }, "receipt_parsed"],
    [
      "non-ASCII key in the gate",
      { gateBytes: edited(GATE, '"local_execution"', '"lokal_ausführung"') },
      "gate_parsed",
    ],
    ["wrong stage", { receiptBytes: edited(RECEIPT, '"stage": 356', '"stage": 357') }, "receipt_header_valid"],
    [
      "extra receipt field",
      { receiptBytes: edited(RECEIPT, '"stage": 356,', '"stage": 356, "x": 1,') },
      "receipt_fields_valid",
    ],
    ["missing check", { gateBytes: edited(GATE, '"runtime_context_detected": true,', "") }, "gate_checks_complete"],
  ] as Array<[string, Partial<Stage356Inputs>, string]>)("terminates on a tampered %s", (_, overrides, check) => {
    expectTerminated(evaluate(overrides), check);
  });

  it.each([
    ["allow", "decision_rederived"],
    ["block", "decision_rederived"],
    ["maybe", "decision_known"],
  ])("catches a decision rewritten to %s in both files with recomputed hashes by re-deriving it", (decision, check) => {
    const result = evaluate(rewritten(onBoth((document) => Object.assign(document, { runtime_decision: decision }))));
    expect(failedChecks(result)).toEqual(decision === "maybe" ? ["decision_known", "decision_rederived"] : [check]);
    expectTerminated(result, check);
  });

  it("catches consistently rewritten checks, reasons and boundaries", () => {
    const notAccepted = rewritten(
      onBoth((document) => Object.assign(document.checks, { stage355_decision_accept: false })),
    );
    expect(failedChecks(evaluate(notAccepted))).toEqual(["decision_rederived", "reasons_rederived"]);
    const reasons = rewritten(onBoth((document) => document.reasons.reverse()));
    expect(failedChecks(evaluate(reasons))).toEqual(["reasons_rederived"]);
    const safety = rewritten((_, gate) => Object.assign(gate.safety_boundary, { no_raw_secrets: false }));
    expect(failedChecks(evaluate(safety))).toEqual(["safety_boundary_intact"]);
    const policy = rewritten((_, gate) => delete gate.fail_closed_policy.block_if_stage355_missing);
    expect(failedChecks(evaluate(policy))).toEqual(["fail_closed_policy_intact"]);
    const context = rewritten((_, gate) => Object.assign(gate.runtime_context, { github_actions_env: "true" }));
    expect(failedChecks(evaluate(context))).toEqual(["runtime_context_consistent"]);
    const time = rewritten((receipt) => Object.assign(receipt, { created_at: "2026-06-23 01:32:21" }));
    expect(failedChecks(evaluate(time))).toEqual(["created_at_valid"]);
  });

  it("blocks a warn that carries violations, which Stage356 itself lets through", () => {
    const inputs = rewritten(
      onBoth((document) => {
        document.checks.stage355_no_real_pqc_signature_claim = false;
        document.violations = ["stage355_real_pqc_signature_claim_detected"];
      }),
    );
    const result = evaluate(inputs);
    expect(failedChecks(result)).toEqual(["violations_empty_unless_block"]);
    expectTerminated(result, "violations_empty_unless_block");
  });

  it("maps an allow receipt from CI to continue", () => {
    const inputs = rewritten((receipt, gate) => {
      gate.runtime_context = {
        is_github_actions: true,
        github_actions_env: "true",
        github_run_id: "101",
        github_sha: "0123abc",
        github_repository: "owner/stage356",
        github_workflow: "runtime",
        local_execution: false,
      };
      for (const document of [receipt, gate]) {
        document.runtime_decision = "allow";
        document.reasons = ["runtime_allowed_in_ci_context"];
      }
    });
    const { receipt } = evaluate({ ...inputs, enforce: true });
    expect(failedChecks({ receipt } as Stage357Result)).toEqual([]);
    expect(receipt).toMatchObject({
      runtime_decision: "allow",
      action: "continue",
      capabilities: { allowed: ALL_CAPABILITIES, isolated: [] },
      enforcement: { mode: "enforce", exit_code: 0 },
      reasons: ["runtime_allowed_in_ci_context"],
    });
  });

  it("maps a verified block receipt to terminate, exiting 1 only when enforcing", () => {
    const inputs = rewritten(
      onBoth((document) => {
        document.checks.stage355_decision_accept = false;
        document.violations = ["stage355_decision_not_accept_verification_ready"];
        document.runtime_decision = "block";
        document.reasons = ["local_context_detected_warn_only", "stage355_decision_not_accept"];
      }),
    );
    const reported = evaluate(inputs);
    expect(failedChecks(reported)).toEqual([]);
    expect(reported.receipt).toMatchObject({
      runtime_decision: "block",
      action: "terminate",
      capabilities: { allowed: [], isolated: ALL_CAPABILITIES },
      enforcement: { mode: "report_only", exit_code: 0 },
      violations: ["stage355_decision_not_accept_verification_ready"],
      reasons: ["local_context_detected_warn_only", "stage355_decision_not_accept"],
    });
    expect(evaluate({ ...inputs, enforce: true }).receipt.enforcement).toEqual({ mode: "enforce", exit_code: 1 });
    expect(evaluate({ ...inputs, githubActions: true }).receipt.enforcement).toEqual({ mode: "enforce", exit_code: 1 });
  });

  it("records only hashes and check names from a file that fails verification", () => {
    const result = evaluate({ receiptBytes: edited(RECEIPT, "runtime_allowed_with_local_warning", "sk-SECRET-123") });
    expect(JSON.stringify(result)).not.toContain("sk-SECRET-123");
    expect(result.receipt.violations).toEqual(failedChecks(result));
  });

  it("refuses a created_at that is not YYYY-MM-DDTHH:MM:SSZ", () => {
    expect(() => evaluate({ createdAt: "2026-07-01T12:00:00.000Z" })).toThrow(InvalidInputError);
  });

  it("is byte-stable", () => {
    expect(stage357Files(evaluate())).toEqual(stage357Files(evaluate()));
  });
});

describe("deep mode: the Stage355 chain", () => {
  it("passes on the shipped files, re-deriving Stage356's checks from them", () => {
    const result = evaluate({ stage355: STAGE355 });
    expect(failedChecks(result)).toEqual([]);
    expect(result.receipt.action).toBe("isolate_and_continue");
    expect(Object.keys(result.receipt.checks)).toContain("stage355_checks_rederived");
    expect(result.summary).toContain("Stage355 chain checked: yes");
  });

  it.each([
    [
      "status",
      { statusBytes: edited(STAGE355.statusBytes, "revocation safety", "revocation-safety") },
      "stage355_status_entry_hash_valid",
    ],
    [
      "result",
      { resultBytes: edited(STAGE355.resultBytes, '"fail_closed_rules_initialized"', '"x"') },
      "stage355_result_sha256_valid",
    ],
    [
      "result binding",
      { resultBytes: edited(STAGE355.resultBytes, '"entry_hash": "cd30', '"entry_hash": "dd30') },
      "stage355_entry_hash_bound",
    ],
    ["missing status", { statusBytes: null }, "stage355_status_readable"],
    [
      "status safety flag",
      { statusBytes: edited(STAGE355.statusBytes, '"no_private_keys": true', '"no_private_keys": false') },
      "stage355_checks_rederived",
    ],
  ] as Array<[string, Partial<Stage356Inputs["stage355"]>, string]>)(
    "fails when the Stage355 %s is edited",
    (_, files, check) => {
      expectTerminated(evaluate({ stage355: { ...STAGE355, ...files } }), check);
    },
  );
});

describe("decision-gate action (CLI)", () => {
  const fixtureArgs = ["--receipt", RECEIPT_FILE, "--gate", GATE_FILE, "--created-at", CREATED_AT];

  it("writes the three files, byte-stable, and exits 0 in report-only mode", async () => {
    const [first, second] = [join(tempDir(), "out"), join(tempDir(), "out")];
    for (const out of [first, second]) {
      const run = await runCli(["action", ...fixtureArgs, "--out", out], { env: NO_GITHUB });
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toMatch(/^Stage357 runtime action: isolate_and_continue \(runtime_decision warn, report_only/);
      expect(run.stdout.split("\n")).toHaveLength(2);
    }
    const expected = stage357Files(evaluate());
    expect(readdirSync(first).sort()).toEqual(expected.map((file) => file.name).sort());
    for (const file of expected) {
      expect(readFileSync(join(first, file.name))).toEqual(readFileSync(join(second, file.name)));
      expect(readFileSync(join(first, file.name), "utf8")).toBe(file.text);
    }
  });

  it("terminates a tampered receipt: exit 0 report-only, 1 with --enforce, 1 with GITHUB_ACTIONS=true", async () => {
    const dir = tempDir();
    const receipt = join(dir, "receipt.json");
    writeFileSync(receipt, edited(RECEIPT, '"warn"', '"allow"'));
    const args = ["action", "--receipt", receipt, "--gate", GATE_FILE, "--out", join(dir, "out")];
    const reported = await runCli(args, { env: NO_GITHUB });
    expect(reported.code).toBe(0);
    expect(reported.stdout).toContain("terminate (runtime_decision block, report_only, exit 0)");
    expect(reported.stdout).toContain("receipt_sha256_valid");
    expect((await runCli([...args, "--enforce"], { env: NO_GITHUB })).code).toBe(1);
    const ci = await runCli(args, { env: { GITHUB_ACTIONS: "true" } });
    expect(ci.code).toBe(1);
    const written = JSON.parse(readFileSync(join(dir, "out", "stage357_runtime_action_receipt.json"), "utf8"));
    expect(written).toMatchObject({ action: "terminate", enforcement: { mode: "enforce", exit_code: 1 } });
    expect(written.reasons).toContain("check_failed:decision_consistent");
  });

  it("treats a missing file as a failed check, not a crash", async () => {
    const out = join(tempDir(), "out");
    const args = ["action", "--receipt", join(out, "absent.json"), "--gate", GATE_FILE, "--out", out, "--enforce"];
    const run = await runCli(args, { env: NO_GITHUB });
    expect(run.code).toBe(1);
    expect(run.stderr).toBe("");
    const written = JSON.parse(readFileSync(join(out, "stage357_runtime_action_receipt.json"), "utf8"));
    expect(written.reasons).toContain("check_failed:receipt_readable");
    expect(written.source_receipt_file_sha256).toBeNull();
  });

  it("checks the Stage355 chain with --stage355-dir", async () => {
    const out = join(tempDir(), "out");
    const run = await runCli(["action", ...fixtureArgs, "--out", out, "--stage355-dir", KEYS], { env: NO_GITHUB });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("isolate_and_continue");
    expect(readFileSync(join(out, "stage357_runtime_action_summary.txt"), "utf8")).toContain(
      "Stage355 chain checked: yes",
    );
  });

  it("signs the action receipt and verifies it with action verify; tampering is detected", async () => {
    const dir = tempDir();
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    const keyFile = join(dir, "signing.pem");
    writeFileSync(keyFile, privateKey.export({ format: "pem", type: "pkcs8" }));
    const pemKey = join(dir, "verify.pem");
    writeFileSync(pemKey, publicKey.export({ format: "pem", type: "spki" }));
    const rawKey = join(dir, "verify.b64");
    writeFileSync(rawKey, publicKey.export({ format: "der", type: "spki" }).subarray(-32).toString("base64"));
    const out = join(dir, "out");
    const signed = await runCli(["action", ...fixtureArgs, "--out", out, "--sign-key", keyFile], { env: NO_GITHUB });
    expect(signed.code, signed.stderr).toBe(0);
    const signature = JSON.parse(readFileSync(join(out, "stage357_runtime_action_receipt.sig.json"), "utf8"));
    expect(signature).toMatchObject({ algorithm: "ed25519", receipt_sha256: evaluate().receipt.receipt_sha256 });

    const verify = (key: string) => runCli(["action", "verify", "--dir", out, "--verify-key", key]);
    for (const key of [pemKey, rawKey]) expect((await verify(key)).code).toBe(0);

    const otherKey = join(dir, "other.b64");
    const other = generateKeyPairSync("ed25519").publicKey.export({ format: "der", type: "spki" }).subarray(-32);
    writeFileSync(otherKey, other.toString("base64"));
    const wrongKey = await verify(otherKey);
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stdout).toContain("signature key mismatch");

    // A consistent rewrite (hashes recomputed) still fails: only the signature covers the whole receipt.
    const receiptFile = join(out, "stage357_runtime_action_receipt.json");
    const receipt = JSON.parse(readFileSync(receiptFile, "utf8"));
    receipt.action = "continue";
    receipt.entry_hash = pythonSha256(without(receipt, ["entry_hash", "receipt_sha256"]));
    receipt.receipt_sha256 = pythonSha256(without(receipt, ["receipt_sha256"]));
    writeFileSync(receiptFile, pretty(receipt));
    const rewrittenRun = await verify(rawKey);
    expect(rewrittenRun.code).toBe(1);
    expect(rewrittenRun.stdout).toContain("signature does not cover this receipt");

    receipt.action = "isolate_and_continue";
    writeFileSync(receiptFile, pretty(receipt));
    const edit = await verify(rawKey);
    expect(edit.code).toBe(1);
    expect(edit.stdout).toContain("entry_hash does not match the receipt");
  });

  it("requires --receipt, --gate and --out, and an Ed25519 signing key before writing anything", async () => {
    const run = await runCli(["action", "--receipt", RECEIPT_FILE]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("--receipt, --gate and --out are required");
    const dir = tempDir();
    const rsaKey = join(dir, "rsa.pem");
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    writeFileSync(rsaKey, privateKey.export({ format: "pem", type: "pkcs8" }));
    const out = join(dir, "out");
    const unsigned = await runCli(["action", ...fixtureArgs, "--out", out, "--sign-key", rsaKey], { env: NO_GITHUB });
    expect(unsigned.code).toBe(1);
    expect(unsigned.stderr).toContain("Ed25519");
    expect(readdirSync(dir)).toEqual(["rsa.pem"]);
  });
});

describe("runtime_action_evaluate (tool)", () => {
  const evaluateTool = async (args: JsonValue) =>
    (await RUNTIME_ACTION_TOOL.run(
      decode(RUNTIME_ACTION_TOOL.args, args, "arguments"),
      {} as ToolCall,
    )) as Stage357Result;
  const definition = catalogEntry("runtime_action_evaluate")?.definition as ToolDefinition;
  const paths = { receipt_path: RECEIPT_FILE, gate_path: GATE_FILE };

  it("returns the receipt the CLI writes for the same inputs and created_at", async () => {
    const out = join(tempDir(), "out");
    mkdirSync(out);
    const cli = await runCli(
      ["action", "--receipt", RECEIPT_FILE, "--gate", GATE_FILE, "--out", out, "--created-at", CREATED_AT],
      {
        env: NO_GITHUB,
      },
    );
    expect(cli.code).toBe(0);
    const written = readFileSync(join(out, "stage357_runtime_action_receipt.json"), "utf8");
    const fromText = await evaluateTool({
      receipt: RECEIPT.toString("utf8"),
      gate: GATE.toString("utf8"),
      created_at: CREATED_AT,
      ...paths,
    });
    expect(`${JSON.stringify(fromText.receipt, null, 2)}\n`).toBe(written);
    // Given as objects, the documents are written as Stage356 writes them: the same bytes, the same raw-file hash.
    const fromObjects = await evaluateTool({
      receipt: parseJson(RECEIPT.toString("utf8")),
      gate: parseJson(GATE.toString("utf8")),
      created_at: CREATED_AT,
      ...paths,
    });
    expect(fromObjects).toEqual(fromText);
    expect(fromText.summary).toBe(readFileSync(join(out, "stage357_runtime_action_summary.txt"), "utf8"));
  });

  it("matches its published input and output schemas", async () => {
    const ajv = new Ajv2020({ strict: false });
    const args = {
      receipt: RECEIPT.toString("utf8"),
      gate: parseJson(GATE.toString("utf8")),
      stage355: { result: STAGE355.resultBytes.toString("utf8"), status: STAGE355.statusBytes.toString("utf8") },
      enforce: true,
      created_at: CREATED_AT,
    };
    expect(ajv.validate(definition.inputSchema, JSON.parse(JSON.stringify(args, bigintAsNumber)))).toBe(true);
    const output = await evaluateTool(args);
    expect(ajv.validate(definition.outputSchema, output), ajv.errorsText()).toBe(true);
    expect(output.receipt).toMatchObject({ action: "isolate_and_continue", enforcement: { mode: "enforce" } });
    expect(failedChecks(output)).toEqual([]);
    expect(definition.annotations.readOnlyHint).toBe(true);
  });

  it("fails closed on documents the canonicalization refuses, and rejects a bad created_at", async () => {
    const gate = parseJson(GATE.toString("utf8")) as Record<string, JsonValue>;
    const withFloat = await evaluateTool({ receipt: RECEIPT.toString("utf8"), gate: { ...gate, stage: 356.5 } });
    expectTerminated(withFloat, "gate_parsed");
    const missing = await evaluateTool({ receipt: null, gate: GATE.toString("utf8"), created_at: CREATED_AT });
    expectTerminated(missing, "receipt_readable");
    await expect(evaluateTool({ receipt: "{}", gate: "{}", created_at: "yesterday" })).rejects.toThrow(
      InvalidInputError,
    );
  });
});

function bigintAsNumber(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? Number(value) : value;
}
