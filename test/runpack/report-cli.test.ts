import { generateKeyPairSync } from "node:crypto";
import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signRunpackManifest } from "../support/runpacks.js";
import { runCli } from "../support/server-process.js";

/* `decision-gate runpack report` as a command: manifest lookup, signature states, exit codes, unreadable input. */

const GOLDEN = new URL("../../../shared/fixtures/reference/runpacks/golden/golden_time_after_pass", import.meta.url);

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), "dg-report-cli-"));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

function copyOfGolden(name: string): string {
  const dir = join(work, name);
  cpSync(GOLDEN, dir, { recursive: true });
  return dir;
}

async function sign(dir: string, manifestName = "manifest.json") {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  await signRunpackManifest(dir, privateKey, manifestName);
  const keyPath = join(work, `${dir.split("/").pop()}.pub.pem`);
  writeFileSync(keyPath, publicKey.export({ format: "pem", type: "spki" }));
  return {
    keyPath,
    keyId: Buffer.from(publicKey.export({ format: "der", type: "spki" }).subarray(-32)).toString("base64"),
  };
}

const report = (dir: string, ...extra: string[]) => runCli(["runpack", "report", dir, "--html", "-", ...extra]);

describe("decision-gate runpack report", () => {
  it("writes the page to a file and names the verification result", async () => {
    const out = join(work, "golden.html");
    const result = await runCli(["runpack", "report", copyOfGolden("golden"), "--html", out]);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`Runpack report written to ${out} (verification: pass)\n`);
    const page = readFileSync(out, "utf8");
    expect(page).toMatch(/^<!doctype html>/);
    expect(page).toContain('<section id="verification" class="verdict verdict-pass" data-status="pass">');
    expect(page).toContain("sha256:fceca5534f343d4266f89d29a1519a6c0ed2935964ad5757a70ed58661dba228");
    expect(page).toContain(`content="default-src 'none'; style-src 'unsafe-inline'"`);
    expect(page).toContain('data-state="unsigned"');
    // The recorded evidence value (the time provider's `true`) is shown, not "not recorded".
    expect(page).toContain('<dl class="evidence"><dt>value</dt><dd><code>true</code></dd>');
    expect(page).not.toContain("not recorded");
  });

  it("finds runpack.json when there is no manifest.json, and says when there is neither", async () => {
    const dir = copyOfGolden("renamed");
    renameSync(join(dir, "manifest.json"), join(dir, "runpack.json"));
    const found = await report(dir);
    expect(found.code).toBe(0);
    expect(found.stdout).toContain('data-status="pass"');
    expect(found.stdout).toContain("runpack.json (v1, offline_strict)");

    rmSync(join(dir, "runpack.json"));
    const missing = await report(dir);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe("");
    expect(missing.stderr).toContain("no manifest.json or runpack.json");
  });

  it("shows a signature as intact without a key, valid with the signer's key, and fails with another key", async () => {
    const dir = copyOfGolden("signed");
    const { keyPath, keyId } = await sign(dir);
    const unpinned = await report(dir);
    expect(unpinned.code).toBe(0);
    expect(unpinned.stdout).toContain('data-state="valid"');
    expect(unpinned.stdout).toContain(`intact, signed by key <code>${keyId}</code>`);

    const pinned = await report(dir, "--verify-key", keyPath);
    expect(pinned.code).toBe(0);
    expect(pinned.stdout).toContain(`valid, by the required key <code>${keyId}</code>`);

    const other = await sign(copyOfGolden("other-signer"));
    const wrongKey = await report(dir, "--verify-key", other.keyPath);
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stdout).toContain('data-status="fail"');
    expect(wrongKey.stdout).toContain('data-state="invalid"><strong>manifest signature key mismatch</strong>');
  });

  it("requires the signature when a key is given", async () => {
    const result = await report(
      copyOfGolden("unsigned"),
      "--verify-key",
      (await sign(copyOfGolden("key-only"))).keyPath,
    );
    expect(result.code).toBe(1);
    expect(result.stdout).toContain("<li>manifest signature missing</li>");
  });

  it("reports a manifest it cannot read as a failure page instead of crashing", async () => {
    const dir = copyOfGolden("broken");
    writeFileSync(join(dir, "manifest.json"), '{"manifest_version": "v1"');
    const result = await report(dir);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('data-status="fail"');
    expect(result.stdout).toMatch(/<li>invalid manifest: [^<]+<\/li>/);
    expect(result.stdout).toContain("(no manifest)");
  });
});
