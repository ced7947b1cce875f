import { generateKeyPairSync, type KeyObject } from "node:crypto";
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { buildRunpack } from "../../src/core/runpack/builder.js";
import { manifestBytes, RunpackManifest, rootHashOf } from "../../src/core/runpack/manifest.js";
import {
  ed25519Signer,
  ManifestSignature,
  rawPublicKey,
  signatureFileName,
  writeManifestSignature,
} from "../../src/core/runpack/signature.js";
import { decode } from "../../src/core/wire/common.js";
import { sha256Hex } from "../../src/json/hash.js";
import { parseJson } from "../../src/json/parse.js";
import type { JsonValue } from "../../src/json/value.js";
import { canonicalJson } from "../../src/json/write.js";
import { FilesystemRunpack, verifyRunpackDirectory } from "../../src/runpack/filesystem.js";
import { signRunpackManifest } from "../support/runpacks.js";
import { harness, logical, nextRequest, runConfig } from "../support/scenarios.js";
import { runCli } from "../support/server-process.js";
import { sharedPath } from "../support/shared.js";

const BACKCOMPAT = sharedPath("fixtures/reference/runpacks/backcompat/v1");
const PASS_8 = { status: "pass", checked_files: 8n, errors: [] };
const temporary: string[] = [];

afterEach(() => {
  for (const dir of temporary.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "dg-runpack-trust-"));
  temporary.push(dir);
  return dir;
}

function copyOfGolden(): string {
  const dir = tempDir();
  cpSync(BACKCOMPAT, dir, { recursive: true });
  return dir;
}

function ed25519Keys(): { privateKey: KeyObject; publicKey: Uint8Array } {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return { privateKey, publicKey: rawPublicKey(publicKey) };
}

/** Decodes the manifest, applies `edit` and writes it back canonically (as the builder would). */
function editManifest(dir: string, edit: (manifest: RunpackManifest) => void): void {
  const path = join(dir, "manifest.json");
  const manifest = decode(RunpackManifest, parseJson(readFileSync(path, "utf8")), "manifest");
  edit(manifest);
  writeFileSync(path, manifestBytes(manifest));
}

function editText(path: string, edit: (text: string) => string): void {
  writeFileSync(path, edit(readFileSync(path, "utf8")));
}

function recomputeRoot(manifest: RunpackManifest): void {
  manifest.integrity.root_hash = rootHashOf(manifest.integrity.file_hashes);
}

function readSignature(dir: string): ManifestSignature {
  return decode(ManifestSignature, parseJson(readFileSync(join(dir, "manifest.json.sig.json"), "utf8")), "signature");
}

/** Runs the release gate to completion and returns its spec and final state. */
async function completedRun() {
  const { plane, store } = harness();
  await plane.start(runConfig(), logical(1), false);
  await plane.next(nextRequest("t-1", 10));
  const state = await store.load(runConfig());
  if (state === undefined) throw new Error("run vanished");
  return { spec: plane.spec, state };
}

describe("manifest signatures", () => {
  it("signs beside the manifest, which stays byte-identical, and verifies with the key", async () => {
    const dir = copyOfGolden();
    const { privateKey, publicKey } = ed25519Keys();
    await signRunpackManifest(dir, privateKey);
    const manifest = readFileSync(join(dir, "manifest.json"));
    expect(manifest.equals(readFileSync(join(BACKCOMPAT, "manifest.json")))).toBe(true);
    const signatureFile = readFileSync(join(dir, signatureFileName("manifest.json")), "utf8");
    const signature = readSignature(dir);
    expect(signatureFile).toBe(canonicalJson(signature as unknown as JsonValue));
    expect(Object.keys(signature)).toEqual(["algorithm", "key_id", "manifest_sha256", "signature"]);
    expect(signature).toMatchObject({
      algorithm: "ed25519",
      key_id: Buffer.from(publicKey).toString("base64"),
      manifest_sha256: sha256Hex(manifest),
    });
    expect(Buffer.from(signature.signature, "base64")).toHaveLength(64);
    expect(await verifyRunpackDirectory(dir, "manifest.json", { verifyKey: publicKey })).toEqual(PASS_8);
  });

  it("round-trips a freshly built runpack, verification report included", async () => {
    const { spec, state } = await completedRun();
    const dir = tempDir();
    const runpack = new FilesystemRunpack(dir);
    const { manifest } = await buildRunpack(spec, state, runpack, {
      generatedAt: logical(20),
      verification: { reader: runpack },
    });
    const { privateKey, publicKey } = ed25519Keys();
    await writeManifestSignature(runpack, "manifest.json", manifest, ed25519Signer(privateKey));
    expect(await verifyRunpackDirectory(dir, "manifest.json", { verifyKey: publicKey })).toEqual(PASS_8);
  });

  it("accepts unsigned runpacks, and ignores a signature, when no key is required", async () => {
    expect(await verifyRunpackDirectory(BACKCOMPAT)).toEqual(PASS_8);
    const dir = copyOfGolden();
    await signRunpackManifest(dir, ed25519Keys().privateKey);
    expect(await verifyRunpackDirectory(dir)).toEqual(PASS_8);
  });

  it("requires the signature when a key is given", async () => {
    const dir = copyOfGolden();
    expect(await verifyRunpackDirectory(dir, "manifest.json", { verifyKey: ed25519Keys().publicKey })).toEqual({
      status: "fail",
      checked_files: 8n,
      errors: ["manifest signature missing"],
    });
  });

  it("says a signature does not cover a manifest changed by one byte", async () => {
    const dir = copyOfGolden();
    const { privateKey, publicKey } = ed25519Keys();
    await signRunpackManifest(dir, privateKey);
    editText(join(dir, "manifest.json"), (text) => text.replace('"run_id":"run-1"', '"run_id":"run-7"'));
    expect((await verifyRunpackDirectory(dir, "manifest.json", { verifyKey: publicKey })).errors).toEqual([
      "manifest signature does not cover this manifest",
    ]);
  });

  it("refuses a signature whose manifest hash was updated to match a tampered manifest", async () => {
    const dir = copyOfGolden();
    const { privateKey, publicKey } = ed25519Keys();
    await signRunpackManifest(dir, privateKey);
    editText(join(dir, "manifest.json"), (text) => text.replace('"run_id":"run-1"', '"run_id":"run-7"'));
    const forged = { ...readSignature(dir), manifest_sha256: sha256Hex(readFileSync(join(dir, "manifest.json"))) };
    writeFileSync(join(dir, "manifest.json.sig.json"), canonicalJson(forged as unknown as JsonValue));
    expect((await verifyRunpackDirectory(dir, "manifest.json", { verifyKey: publicKey })).errors).toEqual([
      "manifest signature invalid",
    ]);
  });

  it("names a signature by another key, and one that only claims the expected key", async () => {
    const dir = copyOfGolden();
    await signRunpackManifest(dir, ed25519Keys().privateKey);
    const expected = ed25519Keys().publicKey;
    const verify = () => verifyRunpackDirectory(dir, "manifest.json", { verifyKey: expected });
    expect((await verify()).errors).toEqual(["manifest signature key mismatch"]);
    const claimed = { ...readSignature(dir), key_id: Buffer.from(expected).toString("base64") };
    writeFileSync(join(dir, "manifest.json.sig.json"), canonicalJson(claimed as unknown as JsonValue));
    expect((await verify()).errors).toEqual(["manifest signature invalid"]);
  });

  it("calls an unreadable signature file invalid", async () => {
    const dir = copyOfGolden();
    const { publicKey } = ed25519Keys();
    for (const content of ["not json", '{"algorithm":"rsa"}']) {
      writeFileSync(join(dir, "manifest.json.sig.json"), content);
      expect((await verifyRunpackDirectory(dir, "manifest.json", { verifyKey: publicKey })).errors).toEqual([
        "manifest signature invalid",
      ]);
    }
  });

  it("refuses a signing key that is not Ed25519", () => {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    expect(() => ed25519Signer(privateKey)).toThrow("signing key must be an Ed25519 private key");
  });
});

describe("stricter verification (D9)", () => {
  it("names artifacts listed in another order than integrity", async () => {
    const dir = copyOfGolden();
    editManifest(dir, (manifest) => {
      const [spec, triggers, gateEvals, ...rest] = manifest.artifacts;
      if (spec === undefined || triggers === undefined || gateEvals === undefined) throw new Error("short list");
      manifest.artifacts = [spec, gateEvals, triggers, ...rest];
    });
    expect(await verifyRunpackDirectory(dir)).toEqual({
      status: "fail",
      checked_files: 8n,
      errors: [
        "artifact list does not match integrity for artifacts/triggers.json",
        "artifact list does not match integrity for artifacts/gate_evals.json",
      ],
    });
  });

  it("names an artifact whose hash differs from integrity", async () => {
    const dir = copyOfGolden();
    editManifest(dir, (manifest) => {
      const triggers = manifest.artifacts[1];
      if (triggers !== undefined) triggers.hash = { algorithm: "sha256", value: "0".repeat(64) };
    });
    expect((await verifyRunpackDirectory(dir)).errors).toEqual([
      "artifact list does not match integrity for artifacts/triggers.json",
    ]);
  });

  it("names a run log missing from both lists", async () => {
    const dir = copyOfGolden();
    editManifest(dir, (manifest) => {
      manifest.artifacts = manifest.artifacts.filter((artifact) => artifact.path !== "artifacts/packets.json");
      manifest.integrity.file_hashes = manifest.integrity.file_hashes.filter(
        (entry) => entry.path !== "artifacts/packets.json",
      );
      recomputeRoot(manifest);
    });
    unlinkSync(join(dir, "artifacts/packets.json"));
    expect(await verifyRunpackDirectory(dir)).toEqual({
      status: "fail",
      checked_files: 7n,
      errors: ["required artifact missing: artifacts/packets.json"],
    });
  });

  it("requires a listed verifier report to be hashed", async () => {
    const dir = copyOfGolden();
    editManifest(dir, (manifest) => {
      manifest.integrity.file_hashes = manifest.integrity.file_hashes.slice(0, 7);
      recomputeRoot(manifest);
    });
    unlinkSync(join(dir, "artifacts/verifier_report.json"));
    expect((await verifyRunpackDirectory(dir)).errors).toEqual([
      "artifact list does not match integrity for artifacts/verifier_report.json",
      "required artifact missing: artifacts/verifier_report.json",
    ]);
  });

  it("names a duplicated path", async () => {
    const dir = copyOfGolden();
    editManifest(dir, (manifest) => {
      const [artifact, entry] = [manifest.artifacts[1], manifest.integrity.file_hashes[1]];
      if (artifact === undefined || entry === undefined) throw new Error("short list");
      manifest.artifacts.push(artifact);
      manifest.integrity.file_hashes.push(entry);
      recomputeRoot(manifest);
    });
    expect(await verifyRunpackDirectory(dir)).toEqual({
      status: "fail",
      checked_files: 9n,
      errors: ["duplicate artifact path: artifacts/triggers.json"],
    });
  });

  it("checks spec_hash against the spec artifact", async () => {
    const dir = copyOfGolden();
    editManifest(dir, (manifest) => {
      manifest.spec_hash = { algorithm: "sha256", value: "0".repeat(64) };
    });
    expect((await verifyRunpackDirectory(dir)).errors).toEqual([
      "spec_hash does not match artifacts/scenario_spec.json",
    ]);
  });

  it("does not count the signature file as unexpected, but does count other files", async () => {
    const dir = copyOfGolden();
    await signRunpackManifest(dir, ed25519Keys().privateKey);
    writeFileSync(join(dir, "other.sig.json"), "{}");
    expect((await verifyRunpackDirectory(dir)).errors).toEqual(["unexpected file in runpack: other.sig.json"]);
  });
});

describe("symlinks in runpacks", () => {
  it("refuses an artifact that is a symlink to a file outside the root", async () => {
    const dir = copyOfGolden();
    const outside = join(tempDir(), "packets.json");
    renameSync(join(dir, "artifacts/packets.json"), outside);
    symlinkSync(outside, join(dir, "artifacts/packets.json"));
    expect(await verifyRunpackDirectory(dir)).toEqual({
      status: "fail",
      checked_files: 7n,
      errors: ["artifact read failed for artifacts/packets.json: artifact error: artifact path escapes runpack root"],
    });
  });

  it("accepts an artifact that is a symlink to a file inside the root", async () => {
    const dir = copyOfGolden();
    // packets.json and submissions.json are both `[]`.
    unlinkSync(join(dir, "artifacts/submissions.json"));
    symlinkSync("packets.json", join(dir, "artifacts/submissions.json"));
    expect(await verifyRunpackDirectory(dir)).toEqual(PASS_8);
  });

  it("refuses artifacts under a symlinked directory that leads outside", async () => {
    const dir = copyOfGolden();
    const outside = join(tempDir(), "artifacts");
    renameSync(join(dir, "artifacts"), outside);
    symlinkSync(outside, join(dir, "artifacts"));
    await expect(new FilesystemRunpack(dir).read("artifacts/triggers.json", 1024)).rejects.toThrow(
      "artifact error: artifact path escapes runpack root",
    );
  });

  it("lists a symlinked directory as an entry without following it", async () => {
    const dir = copyOfGolden();
    const outside = tempDir();
    writeFileSync(join(outside, "hidden.json"), "[]");
    symlinkSync(outside, join(dir, "linked"));
    expect(await new FilesystemRunpack(dir).list()).toContain("linked");
    expect((await verifyRunpackDirectory(dir)).errors).toEqual(["unexpected file in runpack: linked"]);
  });

  it("refuses to write through a symlink", async () => {
    const dir = tempDir();
    const outside = join(tempDir(), "target.json");
    writeFileSync(outside, "original");
    mkdirSync(join(dir, "artifacts"));
    symlinkSync(outside, join(dir, "artifacts/triggers.json"));
    await expect(new FilesystemRunpack(dir).write("artifacts/triggers.json", Buffer.from("[]"))).rejects.toThrow(
      "artifact error: refusing to write through a symlink",
    );
    expect(readFileSync(outside, "utf8")).toBe("original");
  });
});

describe("decision-gate runpack export --sign-key / verify --verify-key", () => {
  it("signs on export and checks the signature on verify, with exit codes", async () => {
    const dir = tempDir();
    const { spec, state } = await completedRun();
    writeFileSync(join(dir, "spec.json"), canonicalJson(spec as unknown as JsonValue));
    writeFileSync(join(dir, "state.json"), canonicalJson(state as unknown as JsonValue));
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    const raw = rawPublicKey(publicKey);
    writeFileSync(join(dir, "signing.pem"), privateKey.export({ type: "pkcs8", format: "pem" }));
    writeFileSync(join(dir, "public.pem"), publicKey.export({ type: "spki", format: "pem" }));
    writeFileSync(join(dir, "public.raw"), raw);
    writeFileSync(join(dir, "public.b64"), `${Buffer.from(raw).toString("base64")}\n`);
    writeFileSync(join(dir, "other.b64"), Buffer.from(ed25519Keys().publicKey).toString("base64"));
    const exportTo = (out: string, ...extra: string[]) =>
      runCli([
        "runpack",
        "export",
        ...["--spec", join(dir, "spec.json"), "--state", join(dir, "state.json"), "--output-dir", join(dir, out)],
        ...["--with-verification", "--generated-at-unix-ms", "1", ...extra],
      ]);
    const verify = (out: string, key?: string) =>
      runCli([
        "runpack",
        "verify",
        ...["--manifest", join(dir, out, "runpack.json")],
        ...(key === undefined ? [] : ["--verify-key", join(dir, key)]),
      ]);

    const [signed, unsigned] = await Promise.all([
      exportTo("signed", "--sign-key", join(dir, "signing.pem")),
      exportTo("unsigned"),
    ]);
    expect(signed).toMatchObject({ code: 0 });
    expect(signed.stdout).toContain(`Runpack signature written to ${join(dir, "signed", "runpack.json.sig.json")}`);
    expect(unsigned.code).toBe(0);

    const pass = { code: 0, stdout: '{"checked_files":8,"errors":[],"status":"pass"}\n' };
    const results = await Promise.all([
      verify("signed", "public.pem"),
      verify("signed", "public.raw"),
      verify("signed", "public.b64"),
      verify("signed"),
      verify("unsigned"),
      verify("signed", "other.b64"),
      verify("unsigned", "public.pem"),
    ]);
    expect(results.slice(0, 5)).toEqual(Array(5).fill(expect.objectContaining(pass)));
    expect(results[5]).toMatchObject({
      code: 1,
      stdout: '{"checked_files":8,"errors":["manifest signature key mismatch"],"status":"fail"}\n',
    });
    expect(results[6]).toMatchObject({
      code: 1,
      stdout: '{"checked_files":8,"errors":["manifest signature missing"],"status":"fail"}\n',
    });
  });

  it("refuses unusable keys with exit code 1", async () => {
    const dir = tempDir();
    const ecKey = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
    writeFileSync(join(dir, "ec.pem"), ecKey.export({ type: "pkcs8", format: "pem" }));
    writeFileSync(join(dir, "private.pem"), ed25519Keys().privateKey.export({ type: "pkcs8", format: "pem" }));
    writeFileSync(join(dir, "bad.pub"), "not a key");
    const golden = join(BACKCOMPAT, "manifest.json");
    const [signingKey, privateAsPublic, garbage] = await Promise.all([
      runCli([
        "runpack",
        "export",
        ...["--spec", "spec.json", "--state", "state.json", "--output-dir", join(dir, "out")],
        ...["--sign-key", join(dir, "ec.pem")],
      ]),
      runCli(["runpack", "verify", "--manifest", golden, "--verify-key", join(dir, "private.pem")]),
      runCli(["runpack", "verify", "--manifest", golden, "--verify-key", join(dir, "bad.pub")]),
    ]);
    expect(signingKey).toMatchObject({ code: 1, stdout: "" });
    expect(signingKey.stderr).toContain("signing key must be an Ed25519 private key in PKCS#8 PEM");
    expect(privateAsPublic).toMatchObject({ code: 1, stdout: "" });
    expect(privateAsPublic.stderr).toContain(`invalid ed25519 public key: ${join(dir, "private.pem")}`);
    expect(garbage).toMatchObject({ code: 1, stdout: "" });
    expect(garbage.stderr).toContain("invalid base64 public key");
  });
});
