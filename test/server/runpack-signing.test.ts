import { generateKeyPairSync } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createMcpClient } from "../../src/cli/client.js";
import { parseJson } from "../../src/json/parse.js";
import { RELEASE_GATE } from "../support/scenarios.js";
import { runCli, startServerProcess } from "../support/server-process.js";

/* `[runpack_storage] signing_key`: the server signs every manifest `runpack_export` writes. */

const work = mkdtempSync(join(tmpdir(), "dg-runpack-signing-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const CONFIG = `
[server]
transport = "http"
bind = "127.0.0.1:0"

[runpack_storage]
type = "filesystem"
signing_key = "keys/runpack.pem"

[[providers]]
name = "time"
type = "builtin"
`;

function keyPair(name: string) {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const publicPem = publicKey.export({ format: "pem", type: "spki" }) as string;
  const publicPath = join(work, `${name}.pub.pem`);
  writeFileSync(publicPath, publicPem);
  return { publicPath, publicPem, privatePem: privateKey.export({ format: "pem", type: "pkcs8" }) as string };
}

const withKey = (pem: string) => (dir: string) => {
  mkdirSync(join(dir, "keys"));
  writeFileSync(join(dir, "keys/runpack.pem"), pem);
};

describe("server-signed runpacks", () => {
  it("signs the exported manifest with the configured key, which runpack verify then requires", async () => {
    const signer = keyPair("server");
    const server = await startServerProcess(CONFIG, [], withKey(signer.privatePem));
    const output = join(work, "export");
    const run = { run_id: "run-signed", tenant_id: 1n, namespace_id: 2n };
    const client = await createMcpClient({ transport: "http", endpoint: `${server.url}/rpc` });
    try {
      await client.callTool("scenario_define", { spec: parseJson(RELEASE_GATE) });
      await client.callTool("scenario_start", {
        scenario_id: "release-gate",
        run_config: { ...run, scenario_id: "release-gate", dispatch_targets: [], policy_tags: [] },
        started_at: { kind: "logical", value: 1n },
        issue_entry_packets: false,
      });
      await client.callTool("runpack_export", {
        scenario_id: "release-gate",
        ...run,
        output_dir: output,
        generated_at: { kind: "logical", value: 5n },
        include_verification: true,
      });
      expect(
        await client.callTool("runpack_verify", { runpack_dir: output, manifest_path: "manifest.json" }),
      ).toMatchObject({
        status: "pass",
      });
    } finally {
      await client.close();
      await server.stop();
    }
    expect(existsSync(join(output, "manifest.json.sig.json"))).toBe(true);
    const verify = (key: string) =>
      runCli(["runpack", "verify", "--manifest", join(output, "manifest.json"), "--verify-key", key]);
    const pinned = await verify(signer.publicPath);
    expect(pinned.code).toBe(0);
    expect(pinned.stdout).toContain('"status":"pass"');
    const other = await verify(keyPair("other").publicPath);
    expect(other.code).toBe(1);
    expect(other.stdout).toContain("manifest signature key mismatch");
  });

  it("refuses to start with a key that is not an Ed25519 private key", async () => {
    const started = startServerProcess(CONFIG, [], withKey(keyPair("public-only").publicPem));
    await expect(started).rejects.toThrow(
      /signing key must be an Ed25519 private key in PKCS#8 PEM: .*keys\/runpack\.pem/,
    );
  });
});
