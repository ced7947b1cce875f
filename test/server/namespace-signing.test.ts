import { generateKeyPairSync, sign } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseJson } from "../../src/json/parse.js";
import type { JsonObject, JsonValue } from "../../src/json/value.js";
import { canonicalJson, compactJson } from "../../src/json/write.js";
import { type ServerProcess, startServerProcess } from "../support/server-process.js";
import { sharedPath } from "../support/shared.js";

async function call(server: ServerProcess, name: string, args: JsonValue, headers: Record<string, string> = {}) {
  const response = await fetch(`${server.url}/rpc`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: compactJson({ jsonrpc: "2.0", id: 1n, method: "tools/call", params: { name, arguments: args } }),
  });
  return parseJson(await response.text()) as JsonObject;
}

const codeOf = (response: JsonObject) => (response.error as JsonObject | undefined)?.code ?? "ok";

describe("the Asset Core namespace authority", () => {
  const seen: IncomingHttpHeaders[] = [];
  const paths: string[] = [];
  let authority: Server;
  let server: ServerProcess;

  beforeAll(async () => {
    authority = createServer((request, response) => {
      seen.push(request.headers);
      paths.push(request.url ?? "");
      const namespace = Number(/\/v1\/write\/namespaces\/(\d+)$/.exec(request.url ?? "")?.[1]);
      const statuses: Record<number, number> = { 2: 200, 3: 404, 4: 403, 5: 500, 7: 204 };
      if (namespace === 6) return; // never answers: a timeout
      response.writeHead(statuses[namespace] ?? 404).end();
    });
    await new Promise<void>((resolve) => authority.listen(0, "127.0.0.1", resolve));
    const port = (authority.address() as AddressInfo).port;
    server = await startServerProcess(`
[server]
transport = "http"
bind = "127.0.0.1:0"
[namespace.authority]
mode = "assetcore_http"
[namespace.authority.assetcore]
base_url = "http://127.0.0.1:${port}/"
auth_token = "ac-token"
connect_timeout_ms = 100
request_timeout_ms = 500
`);
  });
  afterAll(async () => {
    await server?.stop();
    authority.closeAllConnections();
    await new Promise((resolve) => authority.close(resolve));
  });

  it("allows only what Asset Core confirms, failing closed on denial, errors and silence", async () => {
    const list = (namespace: number) =>
      call(server, "scenarios_list", { tenant_id: 1n, namespace_id: BigInt(namespace) });
    expect(codeOf(await list(2))).toBe("ok");
    for (const namespace of [3, 4, 5, 6, 7])
      expect(codeOf(await list(namespace)), `namespace ${namespace}`).toBe(-32003n);
  });

  it("asks with the configured token and the caller's correlation id", async () => {
    seen.length = 0;
    await call(server, "scenarios_list", { tenant_id: 1n, namespace_id: 2n }, { "x-correlation-id": "req-77" });
    expect(paths.at(-1)).toBe("/v1/write/namespaces/2");
    expect(seen[0]).toMatchObject({ authorization: "Bearer ac-token", "x-correlation-id": "req-77" });
  });
});

describe("schema signing that is really verified", () => {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const other = generateKeyPairSync("ed25519").privateKey;
  let server: ServerProcess;

  beforeAll(async () => {
    server = await startServerProcess(
      `
[server]
transport = "http"
bind = "127.0.0.1:0"
[schema_registry.acl]
allow_local_only = true
require_signing = true
signing_keys = ["keys/schemas.pub"]
`,
      [],
      (dir) => {
        mkdirSync(join(dir, "keys"));
        const raw = Buffer.from(publicKey.export({ format: "jwk" }).x as string, "base64url");
        writeFileSync(join(dir, "keys/schemas.pub"), raw.toString("base64"));
      },
    );
  });
  afterAll(async () => {
    await server?.stop();
  });

  const schema = { type: "object", properties: { passed: { type: "integer" } } };
  const signatureOf = (value: JsonValue, key = privateKey) =>
    sign(null, Buffer.from(canonicalJson(value)), key).toString("base64");
  const register = (version: string, signing: JsonValue | undefined, body: JsonValue = schema) =>
    call(server, "schemas_register", {
      record: {
        tenant_id: 1n,
        namespace_id: 2n,
        schema_id: "report",
        version,
        schema: body,
        created_at: { kind: "logical", value: 1n },
        ...(signing === undefined ? {} : { signing }),
      },
    });

  it("registers a schema signed by a configured key", async () => {
    expect(
      codeOf(await register("1", { key_id: "keys/schemas.pub", signature: signatureOf(schema), algorithm: "ed25519" })),
    ).toBe("ok");
  });

  it("says nothing about presence-only signatures at startup", () => {
    expect(server.stderr()).toContain("registry.require_signing=true");
    expect(server.stderr()).not.toContain("checked for presence only");
  });

  it("refuses unsigned, unknown-key, wrong-key, tampered and malformed signatures", async () => {
    const cases: Array<[string, JsonValue | undefined, JsonValue?]> = [
      ["2", undefined],
      ["3", { key_id: "keys/other.pub", signature: signatureOf(schema) }],
      ["4", { key_id: "keys/schemas.pub", signature: signatureOf(schema, other) }],
      ["5", { key_id: "keys/schemas.pub", signature: signatureOf(schema) }, { ...schema, required: ["passed"] }],
      ["6", { key_id: "keys/schemas.pub", signature: "not base64!" }],
      ["7", { key_id: "keys/schemas.pub", signature: signatureOf(schema), algorithm: "rsa" }],
    ];
    for (const [version, signing, body] of cases) {
      const response = await register(version, signing, body ?? schema);
      expect(codeOf(response), `version ${version}`).toBe(-32003n);
      expect((response.error as JsonObject).message).toBe("unauthorized");
    }
  });
});

const PRESENCE_ONLY_WARNING =
  "decision-gate-mcp: WARNING: schema_registry.acl.require_signing is on without signing_keys: schema signatures are " +
  "checked for presence only, not verified";

describe.each([
  ["this project's", fileURLToPath(new URL("../../presets/hardened.toml", import.meta.url))],
  ["the reference's", sharedPath("fixtures/reference/presets/hardened.toml")],
])("%s hardened preset (require_signing without signing_keys)", (_name, presetPath) => {
  let server: ServerProcess;
  const bearer = { authorization: "Bearer dg-hardened-demo-token" };

  beforeAll(async () => {
    const preset = readFileSync(presetPath, "utf8");
    const local = preset.replace('bind = "127.0.0.1:4000"', 'bind = "127.0.0.1:0"');
    expect(local).not.toBe(preset);
    server = await startServerProcess(local, [], (dir) => mkdirSync(join(dir, "evidence")));
  });
  afterAll(async () => {
    await server?.stop();
  });

  const register = (version: string, signing: JsonValue | undefined) =>
    call(
      server,
      "schemas_register",
      {
        record: {
          tenant_id: 1n,
          namespace_id: 2n,
          schema_id: "report",
          version,
          schema: { type: "object" },
          created_at: { kind: "logical", value: 1n },
          ...(signing === undefined ? {} : { signing }),
        },
      },
      bearer,
    );

  it("warns on standard error that signatures are only checked for presence", () => {
    expect(server.stderr()).toContain(PRESENCE_ONLY_WARNING);
  });

  it("registers a schema with non-blank signing metadata, as the reference does", async () => {
    expect(codeOf(await register("1", { key_id: "release-key", signature: "c2lnbmVk" }))).toBe("ok");
    expect(codeOf(await register("2", { key_id: "k", signature: "not base64!", algorithm: "ed25519" }))).toBe("ok");
    const stored = await call(
      server,
      "schemas_get",
      { tenant_id: 1n, namespace_id: 2n, schema_id: "report", version: "1" },
      bearer,
    );
    const content = (stored.result as JsonObject | undefined)?.content as JsonObject[] | undefined;
    const record = (content?.[0]?.json as JsonObject | undefined)?.record as JsonObject | undefined;
    expect(record?.signing).toEqual({ key_id: "release-key", signature: "c2lnbmVk" });
  });

  it("refuses missing or blank signing metadata", async () => {
    const cases: Array<[string, JsonValue | undefined, string]> = [
      ["3", undefined, "schema signing metadata required"],
      ["4", { key_id: " ", signature: "c2lnbmVk" }, "schema signing metadata invalid"],
      ["5", { key_id: "release-key", signature: "" }, "schema signing metadata invalid"],
    ];
    for (const [version, signing] of cases) {
      const response = await register(version, signing);
      expect(codeOf(response), `version ${version}`).toBe(-32003n);
    }
  });
});
