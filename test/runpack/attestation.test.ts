import { execFile } from "node:child_process";
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import {
  cpSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  attestationEnvelope,
  attestationTime,
  DsseEnvelope,
  preAuthenticationEncoding,
} from "../../src/core/runpack/attestation.js";
import { RunpackManifest } from "../../src/core/runpack/manifest.js";
import { ed25519Signer, rawPublicKey } from "../../src/core/runpack/signature.js";
import { decode } from "../../src/core/wire/common.js";
import { sha256Hex } from "../../src/json/hash.js";
import { parseJson } from "../../src/json/parse.js";
import type { JsonValue } from "../../src/json/value.js";
import { canonicalJson } from "../../src/json/write.js";
import { verifyRunpackDirectory } from "../../src/runpack/filesystem.js";
import { harness, logical, nextRequest, runConfig } from "../support/scenarios.js";
import { runCli } from "../support/server-process.js";

/*
 * Runpack attestations (in-toto Statement v1, SLSA VSA predicate, DSSE envelope) from `runpack export --attest`,
 * checked by `runpack verify`, by the report, and by an implementation this project did not write: Debian's
 * python3-securesystemslib, through the script RUNPACKS.md quotes.
 */

const REPO = fileURLToPath(new URL("../../", import.meta.url));
/** Exactly the command RUNPACKS.md shows, run from the repository root. */
const THIRD_PARTY = ["/usr/bin/python3", "docs/verify-runpack-attestation.py"] as const;
const GENERATED_AT_MS = 1_700_000_000_000;
const ENVELOPE = "runpack.json.intoto.dsse.json";
const PASS_8 = '{"checked_files":8,"errors":[],"status":"pass"}\n';

let work: string;
let signing: { privateKey: KeyObject; publicKey: Uint8Array };

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "dg-attestation-"));
  const pair = generateKeyPairSync("ed25519");
  signing = { privateKey: pair.privateKey, publicKey: rawPublicKey(pair.publicKey) };
  writeFileSync(join(work, "signing.pem"), pair.privateKey.export({ type: "pkcs8", format: "pem" }));
  writeFileSync(join(work, "signing.pub.pem"), pair.publicKey.export({ type: "spki", format: "pem" }));
  const other = generateKeyPairSync("ed25519").publicKey;
  writeFileSync(join(work, "other.pub.pem"), other.export({ type: "spki", format: "pem" }));
  for (const [name, steps] of [
    ["completed", 2],
    ["active", 1],
  ] as const) {
    const { spec, state } = await runWith(steps);
    writeFileSync(join(work, `${name}.spec.json`), canonicalJson(spec as unknown as JsonValue));
    writeFileSync(join(work, `${name}.state.json`), canonicalJson(state as unknown as JsonValue));
  }
  const [attested, signed, active] = await Promise.all([
    exportRunpack("attested", "completed", "--attest"),
    exportRunpack("signed", "completed"),
    exportRunpack("attested-active", "active", "--attest", "--verifier-id", "https://gate.example.com/decision-gate"),
  ]);
  for (const result of [attested, signed, active]) expect(result).toMatchObject({ code: 0, stderr: "" });
  expect(attested.stdout).toBe(
    [
      "Verification status: pass",
      `Runpack manifest written to ${join(work, "attested", "runpack.json")}`,
      `Runpack signature written to ${join(work, "attested", "runpack.json.sig.json")}`,
      `Runpack attestation written to ${join(work, "attested", ENVELOPE)}`,
      "",
    ].join("\n"),
  );
}, 60_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The release gate after `steps` triggers: 1 leaves it active in its last stage, 2 completes it. */
async function runWith(steps: 1 | 2) {
  const { plane, store } = harness();
  await plane.start(runConfig(), logical(1), false);
  await plane.next(nextRequest("t-1", 10));
  if (steps === 2) await plane.next(nextRequest("t-2", 20));
  const state = await store.load(runConfig());
  if (state === undefined) throw new Error("run vanished");
  return { spec: plane.spec, state };
}

function exportRunpack(out: string, run: string, ...extra: string[]) {
  return runCli([
    "runpack",
    "export",
    ...["--spec", join(work, `${run}.spec.json`), "--state", join(work, `${run}.state.json`)],
    ...["--output-dir", join(work, out), "--with-verification", "--generated-at-unix-ms", `${GENERATED_AT_MS}`],
    ...["--sign-key", join(work, "signing.pem"), ...extra],
  ]);
}

const verify = (dir: string, key?: string) =>
  runCli([
    "runpack",
    "verify",
    ...["--manifest", join(work, dir, "runpack.json")],
    ...(key === undefined ? [] : ["--verify-key", join(work, key)]),
  ]);

async function thirdParty(dir: string, key = "signing.pub.pem") {
  const args = [THIRD_PARTY[1], join(work, dir, "runpack.json"), join(work, key)];
  try {
    const { stdout } = await promisify(execFile)(THIRD_PARTY[0], args, { cwd: REPO });
    return { code: 0, stdout };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

function copy(from: string, to: string): string {
  cpSync(join(work, from), join(work, to), { recursive: true });
  return join(work, to);
}

function readEnvelope(dir: string): DsseEnvelope {
  return decode(DsseEnvelope, parseJson(readFileSync(join(dir, ENVELOPE), "utf8")), "envelope");
}

function statementOf(envelope: DsseEnvelope): Record<string, unknown> {
  return JSON.parse(Buffer.from(envelope.payload, "base64").toString("utf8"));
}

function manifestOf(dir: string): RunpackManifest {
  return decode(RunpackManifest, parseJson(readFileSync(join(dir, "runpack.json"), "utf8")), "manifest");
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
    .sort();
}

describe("DSSE pre-authentication encoding", () => {
  it("is the DSSE specification's example", () => {
    expect(
      preAuthenticationEncoding("http://example.com/HelloWorld", Buffer.from("hello world")).toString("utf8"),
    ).toBe("DSSEv1 29 http://example.com/HelloWorld 11 hello world");
    // Lengths are in bytes, not characters.
    expect(preAuthenticationEncoding("t", Buffer.from("é")).toString("utf8")).toBe("DSSEv1 1 t 2 é");
  });

  it("turns an export time into RFC 3339, and refuses a logical time or one past year 9999", () => {
    expect(attestationTime({ kind: "unix_millis", value: 1_700_000_000_123n })).toBe("2023-11-14T22:13:20.123Z");
    expect(() => attestationTime(logical(5))).toThrow("generated_at: an attestation needs a unix_millis time");
    expect(() => attestationTime({ kind: "unix_millis", value: 253_402_300_800_000n })).toThrow("out of range");
    expect(() => attestationTime({ kind: "unix_millis", value: -1n })).toThrow("out of range");
  });
});

describe("runpack export --attest", () => {
  it("writes a signed in-toto VSA statement about the manifest beside it, and changes no runpack file", () => {
    const attested = join(work, "attested");
    const signed = join(work, "signed");
    expect(filesUnder(attested)).toEqual([...filesUnder(signed), ENVELOPE].sort());
    for (const file of filesUnder(signed)) {
      expect(readFileSync(join(attested, file)).equals(readFileSync(join(signed, file))), file).toBe(true);
    }
    const envelope = readEnvelope(attested);
    const manifest = manifestOf(attested);
    expect(readFileSync(join(attested, ENVELOPE), "utf8")).toBe(canonicalJson(envelope as unknown as JsonValue));
    expect(envelope.payloadType).toBe("application/vnd.in-toto+json");
    expect(envelope.signatures).toEqual([
      { keyid: Buffer.from(signing.publicKey).toString("base64"), sig: expect.any(String) },
    ]);
    expect(statementOf(envelope)).toEqual({
      _type: "https://in-toto.io/Statement/v1",
      subject: [{ name: "runpack.json", digest: { sha256: sha256Hex(readFileSync(join(attested, "runpack.json"))) } }],
      predicateType: "https://slsa.dev/verification_summary/v1",
      predicate: {
        verifier: { id: "decision-gate://server" },
        timeVerified: "2023-11-14T22:13:20.000Z",
        resourceUri: "decision-gate://tenant/1/namespace/2/scenario/release-gate/run/run-1",
        policy: {
          uri: "decision-gate://tenant/1/namespace/2/scenario/release-gate",
          digest: { sha256: manifest.spec_hash.value },
        },
        verificationResult: "PASSED",
        verifiedLevels: ["DECISION_GATE_RUN_COMPLETED"],
        "decision-gate://runpack/root_hash": { sha256: manifest.integrity.root_hash.value },
      },
    });
  });

  it("attests FAILED for a run that has not completed, under the verifier id given", () => {
    const { predicate } = statementOf(readEnvelope(join(work, "attested-active"))) as {
      predicate: Record<string, unknown>;
    };
    expect(predicate).toMatchObject({
      verifier: { id: "https://gate.example.com/decision-gate" },
      verificationResult: "FAILED",
      verifiedLevels: ["FAILED"],
    });
  });

  it("needs --sign-key and a URI for --verifier-id (usage errors, nothing written)", async () => {
    const [unsigned, badId] = await Promise.all([
      runCli([
        "runpack",
        "export",
        ...["--spec", join(work, "completed.spec.json"), "--state", join(work, "completed.state.json")],
        ...["--output-dir", join(work, "never-1"), "--attest"],
      ]),
      exportRunpack("never-2", "completed", "--attest", "--verifier-id", "not a uri"),
    ]);
    expect(unsigned).toMatchObject({ code: 2, stdout: "", stderr: "error: --attest requires --sign-key\n" });
    expect(badId).toMatchObject({ code: 2, stdout: "", stderr: "error: --verifier-id is not a URI: not a uri\n" });
    expect(readdirSync(work)).not.toContain("never-1");
    expect(readdirSync(work)).not.toContain("never-2");
  });
});

describe("checking an attestation", () => {
  it("passes runpack verify with the signing key and without a key, and Debian's securesystemslib", async () => {
    const [pinned, unpinned, python, pythonActive] = await Promise.all([
      verify("attested", "signing.pub.pem"),
      verify("attested"),
      thirdParty("attested"),
      thirdParty("attested-active"),
    ]);
    expect(pinned).toMatchObject({ code: 0, stdout: PASS_8 });
    expect(unpinned).toMatchObject({ code: 0, stdout: PASS_8 });
    expect(python).toEqual({
      code: 0,
      stdout:
        "attestation verified: PASSED for decision-gate://tenant/1/namespace/2/scenario/release-gate/run/run-1, " +
        "verified by decision-gate://server at 2023-11-14T22:13:20.000Z\n",
    });
    expect(pythonActive).toMatchObject({ code: 0, stdout: expect.stringContaining("attestation verified: FAILED") });
  });

  it("fails a tampered statement, in runpack verify and in securesystemslib", async () => {
    const dir = copy("attested-active", "tampered");
    const envelope = readEnvelope(dir);
    const statement = statementOf(envelope) as { predicate: { verificationResult: string } };
    statement.predicate.verificationResult = "PASSED";
    const forged = { ...envelope, payload: Buffer.from(JSON.stringify(statement)).toString("base64") };
    writeFileSync(join(dir, ENVELOPE), JSON.stringify(forged));
    const [pinned, unpinned, python] = await Promise.all([
      verify("tampered", "signing.pub.pem"),
      verify("tampered"),
      thirdParty("tampered"),
    ]);
    const errors = [
      "attestation signature invalid",
      "attestation result PASSED does not match the run's status (active)",
    ];
    for (const result of [pinned, unpinned]) {
      expect(result).toMatchObject({
        code: 1,
        stdout: `${canonicalJson({ checked_files: 8n, errors, status: "fail" })}\n`,
      });
    }
    expect(python).toMatchObject({
      code: 1,
      stdout: "attestation NOT verified: no valid signature by the given key\n",
    });
  });

  it("fails an attestation by another key when a key is pinned, in both verifiers", async () => {
    const [ours, python] = await Promise.all([
      verify("attested", "other.pub.pem"),
      thirdParty("attested", "other.pub.pem"),
    ]);
    expect(ours.code).toBe(1);
    expect(ours.stdout).toContain('"attestation signature key mismatch"');
    expect(python).toMatchObject({
      code: 1,
      stdout: "attestation NOT verified: no valid signature by the given key\n",
    });
  });

  it("fails a validly signed attestation that does not match the manifest beside it", async () => {
    // Another run's attestation, signed by the right key, copied next to this manifest.
    const dir = copy("attested", "swapped");
    cpSync(join(work, "attested-active", ENVELOPE), join(dir, ENVELOPE));
    // A correctly signed attestation whose claims contradict the runpack: another time and an active run.
    const lying = copy("attested", "lying");
    const manifest = manifestOf(lying);
    const envelope = attestationEnvelope(
      manifest,
      {
        manifestName: "runpack.json",
        verifierId: "decision-gate://server",
        timeVerified: "2020-01-01T00:00:00.000Z",
        runStatus: "active",
      },
      ed25519Signer(signing.privateKey),
    );
    writeFileSync(join(lying, ENVELOPE), envelope);
    const [swapped, swappedPython, lied] = await Promise.all([
      verify("swapped", "signing.pub.pem"),
      thirdParty("swapped"),
      verify("lying", "signing.pub.pem"),
    ]);
    expect(parseJson(swapped.stdout)).toMatchObject({
      errors: [
        "attestation subject digest does not match the manifest",
        "attestation root hash does not match the manifest",
        "attestation result FAILED does not match the run's status (completed)",
      ],
    });
    expect(swappedPython.code).toBe(1);
    expect(swappedPython.stdout).toMatch(/^attestation NOT verified: the statement's subject is not runpack.json/);
    expect(parseJson(lied.stdout)).toMatchObject({
      errors: [
        "attestation timeVerified does not match the manifest's generated_at",
        "attestation result FAILED does not match the run's status (completed)",
      ],
    });
  });

  it("fails an attestation file that is there but cannot be read, and one that is not an envelope", async () => {
    const escaped = copy("attested", "escaped");
    unlinkSync(join(escaped, ENVELOPE));
    symlinkSync(join(work, "attested", ENVELOPE), join(escaped, ENVELOPE));
    const garbled = copy("attested", "garbled");
    writeFileSync(join(garbled, ENVELOPE), "{}");
    expect((await verifyRunpackDirectory(escaped, "runpack.json")).errors).toEqual([
      "attestation unreadable: artifact error: artifact path escapes runpack root",
    ]);
    expect((await verifyRunpackDirectory(garbled, "runpack.json")).errors).toEqual([
      "attestation invalid: not a DSSE envelope",
    ]);
  });

  it("is shown by the HTML report: result, verifier, time and signature", async () => {
    const [pinned, tampered] = await Promise.all([
      runCli([
        "runpack",
        "report",
        join(work, "attested"),
        "--html",
        "-",
        "--verify-key",
        join(work, "signing.pub.pem"),
      ]),
      runCli(["runpack", "report", join(work, "tampered"), "--html", "-"]),
    ]);
    expect(pinned.code).toBe(0);
    const keyId = Buffer.from(signing.publicKey).toString("base64");
    expect(pinned.stdout).toContain(
      '<dd id="attestation" data-state="valid">in-toto SLSA verification summary: <strong data-result="PASSED">PASSED</strong>, ' +
        "verified by <code>decision-gate://server</code> at 2023-11-14T22:13:20.000Z; " +
        `signature valid, by the required key <code>${keyId}</code></dd>`,
    );
    expect(tampered.code).toBe(1);
    expect(tampered.stdout).toContain('<dd id="attestation" data-state="invalid">');
    expect(tampered.stdout).toContain("<strong>attestation signature invalid</strong>");
  });
});

describe("RUNPACKS.md", () => {
  it("shows the third-party check this test runs", () => {
    const doc = readFileSync(join(REPO, "docs/RUNPACKS.md"), "utf8");
    expect(doc).toContain(`${THIRD_PARTY.join(" ")} ./runpack/runpack.json runpack-signing.pub.pem`);
  });
});
