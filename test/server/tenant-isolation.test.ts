import { createHash } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseJson } from "../../src/json/parse.js";
import type { JsonObject, JsonValue } from "../../src/json/value.js";
import { compactJson } from "../../src/json/write.js";
import { type ServerProcess, startServerProcess } from "../support/server-process.js";
import { sharedPath } from "../support/shared.js";

/*
 * D13: `[server.auth] tenant_isolation`. Off (the default), principals drive only the schema-registry ACL, as with
 * the reference; on, every tenant-scoped call needs a covering role, tenant-less definitions need an unrestricted
 * role, and remote callers' runpack paths stay in their tenants' directories.
 */

const TOKENS = {
  one: "tenant-one-token",
  two: "tenant-two-token",
  operator: "operator-token",
  unmapped: "stray-token",
};
type Caller = keyof typeof TOKENS | "loopback";

const principalOf = (token: string) => `token:${createHash("sha256").update(token).digest("hex")}`;

const twoTenantConfig = (isolation: boolean) => `
[server]
transport = "http"
bind = "127.0.0.1:0"
[server.auth]
mode = "bearer_token"
bearer_tokens = [${Object.values(TOKENS)
  .map((token) => `"${token}"`)
  .join(", ")}]
${isolation ? "tenant_isolation = true" : ""}
[[server.auth.principals]]
subject = "${principalOf(TOKENS.one)}"
roles = [{ name = "TenantAdmin", tenant_id = 1 }]
[[server.auth.principals]]
subject = "${principalOf(TOKENS.two)}"
roles = [{ name = "TenantAdmin", tenant_id = 2 }]
[[server.auth.principals]]
subject = "${principalOf(TOKENS.operator)}"
roles = [{ name = "TenantAdmin" }]
[server.audit]
path = "audit.jsonl"
[runpack_storage]
type = "filesystem"
root = "runpacks"
[[providers]]
name = "time"
type = "builtin"
`;

async function call(server: ServerProcess, caller: Caller, name: string, args: JsonValue): Promise<JsonObject> {
  const response = await fetch(`${server.url}/rpc`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(caller === "loopback" ? {} : { authorization: `Bearer ${TOKENS[caller]}` }),
    },
    body: compactJson({ jsonrpc: "2.0", id: 1n, method: "tools/call", params: { name, arguments: args } }),
  });
  return parseJson(await response.text()) as JsonObject;
}

const codeOf = (response: JsonObject) => (response.error as JsonObject | undefined)?.code ?? "ok";
const outputOf = (response: JsonObject) => {
  expect(response.error).toBeUndefined();
  return ((response.result as JsonObject).content as Array<{ json: JsonObject }>)[0]?.json as JsonObject;
};

/** A one-stage scenario; `tenant` null makes it namespace-wide (seen by every tenant of the namespace). */
const spec = (scenarioId: string, tenant: bigint | null, namespace = 2n) => ({
  scenario_id: scenarioId,
  namespace_id: namespace,
  spec_version: "v1",
  default_tenant_id: tenant,
  policies: [],
  schemas: [],
  conditions: [
    {
      condition_id: "after",
      query: { provider_id: "time", check_id: "after", params: { timestamp: 5n } },
      comparator: "equals",
      expected: true,
      policy_tags: [],
    },
  ],
  stages: [
    {
      stage_id: "only",
      entry_packets: [],
      gates: [{ gate_id: "g", requirement: { Condition: "after" } }],
      advance_to: { kind: "terminal" },
      timeout: null,
      on_timeout: "fail",
    },
  ],
});

const define = (server: ServerProcess, caller: Caller, scenarioId: string, tenant: bigint | null, namespace = 2n) =>
  call(server, caller, "scenario_define", { spec: spec(scenarioId, tenant, namespace) });

const start = (server: ServerProcess, caller: Caller, scenarioId: string, tenant: bigint, runId: string) =>
  call(server, caller, "scenario_start", {
    scenario_id: scenarioId,
    run_config: {
      tenant_id: tenant,
      namespace_id: 2n,
      run_id: runId,
      scenario_id: scenarioId,
      dispatch_targets: [],
      policy_tags: [],
    },
    started_at: { kind: "logical", value: 1n },
    issue_entry_packets: false,
  });

const exportRun = (
  server: ServerProcess,
  caller: Caller,
  run: { scenario: string; tenant: bigint; run: string },
  outputDir: string | null,
) =>
  call(server, caller, "runpack_export", {
    scenario_id: run.scenario,
    tenant_id: run.tenant,
    namespace_id: 2n,
    run_id: run.run,
    output_dir: outputDir,
    generated_at: { kind: "logical", value: 9n },
    include_verification: false,
  });

const verify = (server: ServerProcess, caller: Caller, dir: string) =>
  call(server, caller, "runpack_verify", { runpack_dir: dir, manifest_path: "manifest.json" });

const register = (server: ServerProcess, caller: Caller, tenant: bigint, schemaId: string) =>
  call(server, caller, "schemas_register", {
    record: {
      tenant_id: tenant,
      namespace_id: 2n,
      schema_id: schemaId,
      version: "1",
      schema: { type: "object" },
      description: null,
      created_at: { kind: "logical", value: 1n },
    },
  });

const list = async (server: ServerProcess, caller: Caller, tool: "scenarios_list" | "schemas_list", tenant: bigint) => {
  const response = await call(server, caller, tool, { tenant_id: tenant, namespace_id: 2n });
  if (response.error !== undefined) return codeOf(response);
  const items = outputOf(response).items as JsonObject[];
  return items.map((item) => (tool === "scenarios_list" ? item.scenario_id : item.schema_id));
};

const RUN_ONE = { scenario: "one-only", tenant: 1n, run: "r1" };
const RUN_TWO = { scenario: "two-only", tenant: 2n, run: "r2" };
/** Where `runpack_export` puts tenant 1's run when no `output_dir` is named, relative to the runpack root. */
const ONE_PACK = "tenant/1/namespace/2/scenario/one-only/run/r1";

/** A server with tenants 1 and 2, an operator of every tenant and a token no principal maps; runs r1 and r2. */
async function twoTenantServer(isolation: boolean): Promise<ServerProcess> {
  const server = await startServerProcess(twoTenantConfig(isolation));
  const setup = [
    await define(server, "operator", "shared", null),
    await define(server, "one", "one-only", 1n),
    await define(server, "two", "two-only", 2n),
    await start(server, "one", "one-only", 1n, "r1"),
    await start(server, "two", "two-only", 2n, "r2"),
    await exportRun(server, "one", RUN_ONE, null),
    await register(server, "one", 1n, "one-schema"),
    await register(server, "two", 2n, "two-schema"),
  ];
  expect(setup.map(codeOf)).toEqual(Array(setup.length).fill("ok"));
  return server;
}

/** Runs a two-tenant server for the enclosing describe block. */
function twoTenantServerFor(isolation: boolean): () => ServerProcess {
  let server: ServerProcess | undefined;
  beforeAll(async () => {
    server = await twoTenantServer(isolation);
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });
  return () => server as ServerProcess;
}

/** The audit events of `event` about `principal`. */
const auditOf = (server: ServerProcess, event: string, principal: string) =>
  readFileSync(join(server.dir, "audit.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line))
    .filter((entry) => entry.event === event && entry.principal_id === principal);

describe("tenant_isolation = true, two tenants", () => {
  const running = twoTenantServerFor(true);

  it("lets only an unrestricted role define a scenario without a tenant", async () => {
    const server = running();
    expect(codeOf(await define(server, "two", "planted", null))).toBe(-32003n);
    expect(codeOf(await define(server, "two", "planted", 1n))).toBe(-32003n);
    expect(await list(server, "one", "scenarios_list", 1n)).toEqual(["one-only", "shared"]);
    expect(codeOf(await define(server, "two", "planted", 2n))).toBe("ok");
    expect(codeOf(await define(server, "operator", "shared-too", null))).toBe("ok");
    expect(await list(server, "one", "scenarios_list", 1n)).toEqual(["one-only", "shared", "shared-too"]);
  });

  it("lists and reads only what the caller's roles cover", async () => {
    const server = running();
    expect(await list(server, "two", "scenarios_list", 1n)).toBe(-32003n);
    expect(await list(server, "two", "schemas_list", 1n)).toBe(-32003n);
    const status = {
      run_id: "r1",
      tenant_id: 1n,
      namespace_id: 2n,
      requested_at: { kind: "logical", value: 2n },
      correlation_id: null,
    };
    expect(codeOf(await call(server, "two", "scenario_status", { scenario_id: "one-only", request: status }))).toBe(
      -32003n,
    );
    const schemaOfOne = { tenant_id: 1n, namespace_id: 2n, schema_id: "one-schema", version: "1" };
    expect(codeOf(await call(server, "two", "schemas_get", schemaOfOne))).toBe(-32003n);

    const visibleToTwo = await list(server, "two", "scenarios_list", 2n);
    expect(visibleToTwo).toEqual(expect.arrayContaining(["shared", "two-only"]));
    expect(visibleToTwo).not.toContain("one-only");
    expect(await list(server, "two", "schemas_list", 2n)).toEqual(["two-schema"]);
    expect(await list(server, "one", "schemas_list", 1n)).toEqual(["one-schema"]);
    expect(codeOf(await call(server, "one", "scenario_status", { scenario_id: "one-only", request: status }))).toBe(
      "ok",
    );
    expect(codeOf(await call(server, "one", "schemas_get", schemaOfOne))).toBe("ok");
  });

  it("keeps each tenant's runpack directories out of the other tenant's reach", async () => {
    const server = running();
    const manifest = join(server.dir, "runpacks", ONE_PACK, "manifest.json");
    const before = readFileSync(manifest);
    for (const dir of [ONE_PACK, "tenant/1", `tenant/2/../1/${ONE_PACK.slice("tenant/1/".length)}`, ".", "tenant"]) {
      expect(codeOf(await verify(server, "two", dir)), dir).toBe(-32003n);
    }
    expect(codeOf(await exportRun(server, "two", RUN_TWO, ONE_PACK))).toBe(-32003n);
    expect(codeOf(await exportRun(server, "two", RUN_TWO, "packs/r2"))).toBe(-32003n);
    expect(readFileSync(manifest)).toEqual(before);

    expect(outputOf(await verify(server, "one", ONE_PACK)).status).toBe("pass");
    expect(outputOf(await verify(server, "operator", ONE_PACK)).status).toBe("pass");
    expect(codeOf(await exportRun(server, "two", RUN_TWO, "tenant/2/packs/r2"))).toBe("ok");
    expect(outputOf(await verify(server, "two", "tenant/2/packs/r2")).status).toBe("pass");
    // The operator exports tenant 1's run, but only into tenant 1's directory.
    expect(codeOf(await exportRun(server, "operator", RUN_ONE, "tenant/2/copy"))).toBe(-32003n);
    expect(codeOf(await exportRun(server, "operator", RUN_ONE, "tenant/1/copy"))).toBe("ok");
  });

  it("refuses a token no principal maps before the registry ACL", async () => {
    const server = running();
    expect(await list(server, "unmapped", "schemas_list", 1n)).toBe(-32003n);
    const principal = principalOf(TOKENS.unmapped);
    expect(auditOf(server, "tenant_authz", principal)).toMatchObject([{ tool: "schemas_list", allowed: false }]);
    expect(auditOf(server, "registry_audit", principal)).toEqual([]);
  });
});

describe("tenant_isolation off (the default), two tenants", () => {
  const running = twoTenantServerFor(false);

  it("does not check tenants, as the reference", async () => {
    const server = running();
    expect(codeOf(await define(server, "two", "planted", null))).toBe("ok");
    expect(await list(server, "two", "scenarios_list", 1n)).toEqual(["one-only", "planted", "shared"]);
    expect(outputOf(await verify(server, "two", ONE_PACK)).status).toBe("pass");
    expect(codeOf(await exportRun(server, "two", RUN_TWO, "packs/r2"))).toBe("ok");
    // D9 still holds: a remote caller's runpack paths stay under the runpack root.
    expect((await exportRun(server, "two", RUN_TWO, "../escape")).error).toMatchObject({ code: -32040n });
  });

  it("lets the principals drive the schema-registry ACL, which audits an unmapped token's denial", async () => {
    const server = running();
    expect(await list(server, "two", "schemas_list", 1n)).toBe(-32003n);
    expect(await list(server, "two", "schemas_list", 2n)).toEqual(["two-schema"]);
    expect(await list(server, "unmapped", "schemas_list", 1n)).toBe(-32003n);
    const principal = principalOf(TOKENS.unmapped);
    expect(auditOf(server, "tenant_authz", principal)).toMatchObject([{ allowed: true, reason: "noop_allow" }]);
    expect(auditOf(server, "registry_audit", principal)).toMatchObject([
      { action: "list", allowed: false, reason: "builtin_deny_read", roles: [] },
    ]);
  });
});

describe("the reference default-recommended preset (loopback = TenantAdmin of tenant 1, namespace 1)", () => {
  const preset = readFileSync(sharedPath("fixtures/reference/presets/default-recommended.toml"), "utf8");
  const serve = (text: string) =>
    startServerProcess(text.replace('bind = "127.0.0.1:4000"', 'bind = "127.0.0.1:0"'), [], (dir) =>
      mkdirSync(join(dir, "evidence")),
    );

  it("serves namespaces its roles do not name, as the reference", async () => {
    const server = await serve(preset);
    try {
      expect(codeOf(await define(server, "loopback", "release", 1n))).toBe("ok");
      expect(await list(server, "loopback", "scenarios_list", 1n)).toEqual(["release"]);
    } finally {
      await server.stop();
    }
  });

  it("with tenant_isolation = true, refuses them with -32003", async () => {
    const isolating = preset.replace('mode = "local_only"', 'mode = "local_only"\ntenant_isolation = true');
    expect(isolating).not.toBe(preset);
    const server = await serve(isolating);
    try {
      expect(codeOf(await define(server, "loopback", "release", 1n))).toBe(-32003n);
      expect(codeOf(await define(server, "loopback", "release", 1n, 1n))).toBe("ok");
    } finally {
      await server.stop();
    }
  });
});
