import { execFile } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { createMcpClient } from "../../src/cli/client.js";
import { ed25519Signer } from "../../src/core/runpack/signature.js";
import { parseJson } from "../../src/json/parse.js";
import { writeRunpackAttestation } from "../../src/runpack/attestation.js";
import { FilesystemRunpack, readManifest } from "../../src/runpack/filesystem.js";
import { logical, RELEASE_GATE } from "../support/scenarios.js";
import { runCli, startServerProcess } from "../support/server-process.js";

/* `[runpack_storage] attestation = true`: the server attests every runpack `runpack_export` writes. */

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const work = mkdtempSync(join(tmpdir(), "dg-attestation-server-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const config = (storage: string) => `
[server]
transport = "http"
bind = "127.0.0.1:0"

[runpack_storage]
type = "filesystem"
${storage}

[[providers]]
name = "time"
type = "builtin"
`;

const { publicKey, privateKey } = generateKeyPairSync("ed25519");
const PUBLIC_KEY = join(work, "runpack.pub.pem");
writeFileSync(PUBLIC_KEY, publicKey.export({ format: "pem", type: "spki" }));
const withKey = (dir: string) => {
  mkdirSync(join(dir, "keys"));
  writeFileSync(join(dir, "keys/runpack.pem"), privateKey.export({ format: "pem", type: "pkcs8" }));
};

describe("server attestations", () => {
  it("refuses attestation without a signing key, naming the field", async () => {
    await expect(startServerProcess(config("attestation = true"))).rejects.toThrow(
      "runpack_storage.attestation requires runpack_storage.signing_key",
    );
    await expect(
      startServerProcess(config('signing_key = "keys/runpack.pem"\nattestation_verifier_id = "no uri"'), [], withKey),
    ).rejects.toThrow("runpack_storage.attestation_verifier_id must be a URI");
  });

  it("writes an attestation beside the exported manifest that both verifiers accept", async () => {
    const server = await startServerProcess(
      config(
        'signing_key = "keys/runpack.pem"\nattestation = true\nattestation_verifier_id = "https://gate.example.com/dg"',
      ),
      [],
      withKey,
    );
    const output = join(work, "export");
    const logicalOutput = join(work, "logical-export");
    const run = { run_id: "run-attested", tenant_id: 1n, namespace_id: 2n };
    const client = await createMcpClient({ transport: "http", endpoint: `${server.url}/rpc` });
    const exportArgs = { scenario_id: "release-gate", ...run, include_verification: true };
    let refusal: unknown;
    try {
      await client.callTool("scenario_define", { spec: parseJson(RELEASE_GATE) });
      await client.callTool("scenario_start", {
        scenario_id: "release-gate",
        run_config: { ...run, scenario_id: "release-gate", dispatch_targets: [], policy_tags: [] },
        started_at: logical(1),
        issue_entry_packets: false,
      });
      for (const [trigger, time] of [
        ["t-1", 10],
        ["t-2", 20],
      ] as const) {
        await client.callTool("scenario_next", {
          scenario_id: "release-gate",
          request: { ...run, trigger_id: trigger, agent_id: "agent-1", time: logical(time) },
        });
      }
      await client.callTool("runpack_export", {
        ...exportArgs,
        output_dir: output,
        generated_at: { kind: "unix_millis", value: 1_700_000_000_000n },
      });
      refusal = await client
        .callTool("runpack_export", { ...exportArgs, output_dir: logicalOutput, generated_at: logical(5) })
        .catch((error: Error) => error.message);
      expect(
        await client.callTool("runpack_verify", { runpack_dir: output, manifest_path: "manifest.json" }),
      ).toMatchObject({ status: "pass" });
    } finally {
      await client.close();
      await server.stop();
    }
    expect(refusal).toContain("generated_at: an attestation needs a unix_millis time for timeVerified, not logical");
    expect(existsSync(logicalOutput)).toBe(false);

    const envelope = JSON.parse(readFileSync(join(output, "manifest.json.intoto.dsse.json"), "utf8"));
    const statement = JSON.parse(Buffer.from(envelope.payload, "base64").toString("utf8"));
    expect(statement.subject[0].name).toBe("manifest.json");
    expect(statement.predicate).toMatchObject({
      verifier: { id: "https://gate.example.com/dg" },
      timeVerified: "2023-11-14T22:13:20.000Z",
      resourceUri: "decision-gate://tenant/1/namespace/2/scenario/release-gate/run/run-attested",
      verificationResult: "PASSED",
    });
    const [ours, python] = await Promise.all([
      runCli(["runpack", "verify", "--manifest", join(output, "manifest.json"), "--verify-key", PUBLIC_KEY]),
      promisify(execFile)(
        "/usr/bin/python3",
        ["docs/verify-runpack-attestation.py", join(output, "manifest.json"), PUBLIC_KEY],
        { cwd: REPO },
      ),
    ]);
    expect(ours).toMatchObject({ code: 0, stdout: '{"checked_files":8,"errors":[],"status":"pass"}\n' });
    expect(python.stdout).toMatch(/^attestation verified: PASSED for decision-gate:\/\/tenant\/1\/namespace\/2\//);
  });

  it("makes runpack_verify check an attestation against the server's own key", async () => {
    // The runpack the previous test exported, re-attested by another key.
    const dir = join(work, "export");
    const runpack = new FilesystemRunpack(dir);
    await writeRunpackAttestation(runpack, await readManifest(runpack, "manifest.json"), {
      manifestName: "manifest.json",
      verifierId: "decision-gate://server",
      timeVerified: "2023-11-14T22:13:20.000Z",
      runStatus: "completed",
      signer: ed25519Signer(generateKeyPairSync("ed25519").privateKey),
    });
    const server = await startServerProcess(config('signing_key = "keys/runpack.pem"'), [], withKey);
    const client = await createMcpClient({ transport: "http", endpoint: `${server.url}/rpc` });
    try {
      expect(
        await client.callTool("runpack_verify", { runpack_dir: dir, manifest_path: "manifest.json" }),
      ).toMatchObject({
        status: "fail",
        report: { errors: ["attestation signature key mismatch"] },
      });
    } finally {
      await client.close();
      await server.stop();
    }
  });
});
