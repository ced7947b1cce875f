import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import { parse } from "smol-toml";
import { afterAll, describe, expect, it } from "vitest";
import { configurationDocsPath, renderConfigurationDocs } from "../../src/config/docs.js";
import { configJsonSchema, visitKeys } from "../../src/config/json-schema.js";
import { ConfigError, loadConfig, parseConfigText, resolveConfigPaths } from "../../src/config/load.js";
import { listPresets, presetPath } from "../../src/config/presets.js";
import { editDistance, nearestKey } from "../../src/config/unknown-keys.js";
import type { JsonSchemaNode } from "../../src/core/wire/json-schema.js";
import { type JsonValue, toPlainJson } from "../../src/json/value.js";
import { toolNames } from "../../src/server/tools/catalog.js";
import { validateServerConfig } from "../../src/server/validate-config.js";
import { readSharedJson, sharedPath } from "../support/shared.js";

const REFERENCE_PRESETS = sharedPath("fixtures/reference/presets");
const referencePresetFiles = readdirSync(REFERENCE_PRESETS).filter((name) => name.endsWith(".toml"));

const scratch = mkdtempSync(join(tmpdir(), "dg-config-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

let counter = 0;
/** A fresh directory holding `files` (name → contents). */
function directoryWith(files: Record<string, string | Uint8Array> = {}): string {
  const directory = join(scratch, `case-${counter++}`);
  mkdirSync(directory, { recursive: true });
  for (const [name, contents] of Object.entries(files)) {
    mkdirSync(join(directory, name, ".."), { recursive: true });
    writeFileSync(join(directory, name), contents);
  }
  return directory;
}

function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error("expected a ConfigError");
}

async function loadError(run: () => Promise<unknown>): Promise<ConfigError> {
  const error = await run().then(
    () => undefined,
    (failure: unknown) => failure,
  );
  if (error instanceof ConfigError) return error;
  throw new Error(`expected a ConfigError, got ${String(error)}`);
}

describe("presets", () => {
  it.each(referencePresetFiles)("the reference preset %s loads unchanged", async (name) => {
    const loaded = await loadConfig({ path: join(REFERENCE_PRESETS, name), strict: true });
    expect(loaded.warnings).toEqual([]);
    expect(loaded.config.server.mode).toBe("strict");
    expect(loaded.config.trust).toEqual({ default_policy: "audit", min_lane: "verified" });
    expect(loaded.config.providers.map((entry) => entry.name)).toEqual(["time", "env", "json", "http"]);
  });

  it.each(listPresets())("our preset %s loads without warnings", async (name) => {
    const loaded = await loadConfig({ path: presetPath(name), strict: true });
    expect(loaded.warnings).toEqual([]);
    expect(loaded.preset).toBe(name);
    expect(loaded.baseDir).toBe(join(presetPath(name), ".."));
  });

  it.each(listPresets())("our preset %s has the reference preset's security posture", async (name) => {
    const ours = (await loadConfig({ path: presetPath(name) })).config;
    const reference = (await loadConfig({ path: join(REFERENCE_PRESETS, `${name}.toml`) })).config;
    const posture = (config: typeof ours) => ({
      transport: config.server.transport,
      bind: config.server.bind,
      tls_termination: config.server.tls_termination,
      // D13: hardened and container-prod opt in to tenant isolation (checked below); the rest of auth is the same.
      auth: { ...config.server.auth, tenant_isolation: null },
      dev: config.dev,
      namespace: config.namespace,
      trust: config.trust,
      evidence: config.evidence,
      acl: config.schema_registry.acl,
      validation: config.validation,
      policy: config.policy,
      feedback: config.server.feedback,
      // hardened and container-prod list the env variables gates may read (checked below); the reference has none.
      providers: config.providers.map(({ name: provider, type, config: settings }) => ({
        provider,
        type,
        settings: provider === "env" ? undefined : settings,
      })),
    });
    const withoutRoots = (value: ReturnType<typeof posture>) =>
      JSON.parse(JSON.stringify(toPlainJson(value as unknown as JsonValue)).replaceAll(/"root":"[^"]*"/g, '"root":""'));
    expect(withoutRoots(posture(ours))).toEqual(withoutRoots(posture(reference)));
  });

  it("isolates tenants in hardened and container-prod only; the reference presets leave it off", async () => {
    const isolating = listPresets().filter(
      (name) => parseConfigText(readFileSync(presetPath(name), "utf8")).config.server.auth.tenant_isolation,
    );
    expect(isolating.sort()).toEqual(["container-prod", "hardened"]);
    for (const name of referencePresetFiles) {
      const { config } = await loadConfig({ path: join(REFERENCE_PRESETS, name) });
      expect(config.server.auth.tenant_isolation, name).toBe(false);
    }
  });

  it("gives the env provider an allowlist in hardened and container-prod only", () => {
    const listing = listPresets().filter((name) =>
      parseConfigText(readFileSync(presetPath(name), "utf8")).config.providers.some(
        (entry) =>
          entry.name === "env" && (entry.config as { allowlist?: unknown } | undefined)?.allowlist !== undefined,
      ),
    );
    expect(listing.sort()).toEqual(["container-prod", "hardened"]);
  });

  it("keeps SQLite files under ./.decision-gate/ (container-prod: /var/lib/decision-gate/)", () => {
    for (const name of listPresets()) {
      const { config } = parseConfigText(readFileSync(presetPath(name), "utf8"));
      const prefix = name === "container-prod" ? "/var/lib/decision-gate/" : "./.decision-gate/";
      expect(config.run_state_store.path?.startsWith(prefix)).toBe(true);
      expect(config.schema_registry.path?.startsWith(prefix)).toBe(true);
      const json = config.providers.find((entry) => entry.name === "json");
      expect(json?.config).toMatchObject({ root: "./evidence" });
    }
  });
});

describe("defaults", () => {
  it("an empty file is valid with the documented defaults", () => {
    const { config, warnings } = parseConfigText("");
    expect(warnings).toEqual([]);
    expect(config.server).toMatchObject({
      transport: "stdio",
      mode: "strict",
      tls_termination: "server",
      max_body_bytes: 1_048_576,
      limits: { max_inflight: 256 },
      auth: {
        mode: "local_only",
        bearer_tokens: [],
        mtls_subjects: [],
        allowed_tools: [],
        principals: [],
        tenant_isolation: false,
      },
      audit: { enabled: true, log_precheck_payloads: false },
      feedback: {
        scenario_next: { default: "summary", local_only_default: "trace", max: "trace" },
      },
      tools: { mode: "filter", allowlist: [], denylist: [] },
    });
    expect(config.server.bind).toBeUndefined();
    expect(config.server.tls).toBeUndefined();
    expect(config.server.limits.rate_limit).toBeUndefined();
    expect(config.server.feedback.scenario_next.trace_subjects).toEqual(["loopback", "stdio"]);
    expect(config.dev).toMatchObject({ permissive: false, permissive_warn: true });
    expect(config.dev.permissive_exempt_providers).toEqual(["assetcore_read", "assetcore"]);
    expect(config.namespace).toEqual({ allow_default: false, default_tenants: [], authority: { mode: "none" } });
    expect(config.trust).toEqual({ default_policy: "audit", min_lane: "verified" });
    expect(config.evidence).toEqual({
      allow_raw_values: false,
      require_provider_opt_in: true,
      record_raw_values: true,
    });
    expect(config.provider_discovery).toEqual({ allowlist: [], denylist: [], max_response_bytes: 1_048_576 });
    expect(config.validation).toMatchObject({ strict: true, profile: "strict_core_v1", allow_permissive: false });
    expect(config.policy).toEqual({ engine: "permit_all" });
    expect(config.run_state_store).toEqual({
      type: "memory",
      busy_timeout_ms: 5000,
      journal_mode: "wal",
      sync_mode: "full",
      startup_check: "quick",
    });
    expect(config.schema_registry).toMatchObject({
      type: "memory",
      max_schema_bytes: 1_048_576,
      acl: { mode: "builtin", default: "deny", allow_local_only: false, require_signing: false, rules: [] },
    });
    expect(config.docs).toEqual({
      enabled: true,
      enable_search: true,
      enable_resources: true,
      include_default_docs: true,
      extra_paths: [],
      max_doc_bytes: 262_144,
      max_total_bytes: 1_048_576,
      max_docs: 32,
      max_sections: 10,
    });
    expect(config.runpack_storage).toEqual({
      type: "filesystem",
      root: "./runpacks",
      attestation: false,
      attestation_verifier_id: "decision-gate://server",
    });
    expect(config.providers).toEqual([]);
  });

  it("maps the legacy server.mode = dev_permissive to dev.permissive", () => {
    const { config } = parseConfigText('[server]\nmode = "dev_permissive"\n');
    expect(config.dev.permissive).toBe(true);
  });

  it("keeps tenant ids exact as bigint and sizes as numbers", () => {
    const { config } = parseConfigText(
      "[namespace]\nallow_default = true\ndefault_tenants = [18446744073709551615]\n[server.limits]\nmax_inflight = 8\n",
    );
    expect(config.namespace.default_tenants).toEqual([18_446_744_073_709_551_615n]);
    expect(config.server.limits.max_inflight).toBe(8);
  });
});

describe("path resolution", () => {
  const file = (transport: string) => `[server]\ntransport = "${transport}"\nbind = "127.0.0.1:4000"\n`;

  it("uses the explicit path first, relative to cwd", async () => {
    const cwd = directoryWith({ "conf/a.toml": file("http"), "env.toml": file("sse"), "decision-gate.toml": "" });
    const loaded = await loadConfig({ path: "conf/a.toml", cwd, env: { DECISION_GATE_CONFIG: join(cwd, "env.toml") } });
    expect(loaded.path).toBe(join(cwd, "conf/a.toml"));
    expect(loaded.baseDir).toBe(cwd);
    expect(loaded.config.server.transport).toBe("http");
    expect(loaded.preset).toBeNull();
  });

  it("then DECISION_GATE_CONFIG", async () => {
    const cwd = directoryWith({ "env.toml": file("sse"), "decision-gate.toml": "" });
    const loaded = await loadConfig({ cwd, env: { DECISION_GATE_CONFIG: "env.toml" } });
    expect(loaded.path).toBe(join(cwd, "env.toml"));
    expect(loaded.config.server.transport).toBe("sse");
  });

  it("then ./decision-gate.toml", async () => {
    const cwd = directoryWith({ "decision-gate.toml": file("http") });
    const loaded = await loadConfig({ cwd, env: {} });
    expect(loaded.path).toBe(join(cwd, "decision-gate.toml"));
    expect(loaded.config.server.transport).toBe("http");
  });

  it("else the built-in quickstart-dev preset with its state under ./.decision-gate/", async () => {
    const cwd = directoryWith();
    const loaded = await loadConfig({ cwd, env: {} });
    const state = join(cwd, ".decision-gate");
    expect(loaded.path).toBeNull();
    expect(loaded.preset).toBe("quickstart-dev");
    expect(loaded.baseDir).toBe(cwd);
    expect(existsSync(join(state, "evidence"))).toBe(true);
    expect(loaded.config.run_state_store.path).toBe(join(state, "decision-gate.db"));
    expect(loaded.config.schema_registry.path).toBe(join(state, "decision-gate-registry.db"));
    expect(loaded.config.providers.find((entry) => entry.name === "json")?.config).toMatchObject({
      root: join(state, "evidence"),
    });
    expect(loaded.config.dev.permissive).toBe(true);
    expect(loaded.warnings.at(-1)).toContain("built-in quickstart-dev preset");
  });

  it("fails with an io error when a named file does not exist", async () => {
    const cwd = directoryWith();
    expect((await loadError(() => loadConfig({ path: "missing.toml", cwd }))).message).toMatch(/^config io error: /);
    const fromEnv = await loadError(() => loadConfig({ cwd, env: { DECISION_GATE_CONFIG: "missing.toml" } }));
    expect(fromEnv.message).toMatch(/^config io error: /);
  });

  it("limits DECISION_GATE_CONFIG to 4096 bytes", async () => {
    const error = await loadError(() => loadConfig({ cwd: scratch, env: { DECISION_GATE_CONFIG: "a".repeat(4097) } }));
    expect(error.message).toBe("config io error: DECISION_GATE_CONFIG exceeds 4096 bytes");
  });

  it("resolves relative paths against the working directory by default, as the reference", async () => {
    const cwd = directoryWith({ "project/dg.toml": '[run_state_store]\ntype = "sqlite"\npath = "state/runs.db"\n' });
    const { config, baseDir } = await loadConfig({ path: "project/dg.toml", cwd });
    expect(baseDir).toBe(cwd);
    expect(config.run_state_store.path).toBe(join(cwd, "state/runs.db"));
  });

  it('resolves relative paths against the config file\'s directory with [paths] relative_to = "config_file"', async () => {
    const text = `
[paths]
relative_to = "config_file"
[server]
transport = "http"
bind = "127.0.0.1:4000"
[server.tls]
cert_path = "tls/cert.pem"
key_path = "/etc/key.pem"
client_ca_path = "../ca.pem"
[server.audit]
path = "logs/audit.jsonl"
[trust]
default_policy = { require_signature = { keys = ["keys/a.pub"] } }
[run_state_store]
type = "sqlite"
path = "state/runs.db"
[schema_registry]
type = "sqlite"
path = "./state/registry.db"
[docs]
extra_paths = ["guides"]
[runpack_storage]
type = "filesystem"
root = "runpacks"
[[providers]]
name = "json"
type = "builtin"
config = { root = "./evidence", root_id = "evidence-root" }
[[providers]]
name = "ext"
type = "mcp"
command = ["ext-provider"]
capabilities_path = "contracts/ext.json"
trust = { require_signature = { keys = ["keys/ext.pub"] } }
`;
    const cwd = directoryWith({ "project/config/dg.toml": text });
    const base = join(cwd, "project/config");
    const { config, baseDir } = await loadConfig({ path: join(base, "dg.toml"), cwd: scratch });
    expect(baseDir).toBe(base);
    expect(config.server.tls).toMatchObject({
      cert_path: join(base, "tls/cert.pem"),
      key_path: "/etc/key.pem",
      client_ca_path: join(cwd, "project/ca.pem"),
    });
    expect(config.server.audit.path).toBe(join(base, "logs/audit.jsonl"));
    expect(config.run_state_store.path).toBe(join(base, "state/runs.db"));
    expect(config.schema_registry.path).toBe(join(base, "state/registry.db"));
    expect(config.docs.extra_paths).toEqual([join(base, "guides")]);
    expect(config.runpack_storage).toMatchObject({ type: "filesystem", root: join(base, "runpacks") });
    expect(config.providers[0]?.config).toMatchObject({ root: join(base, "evidence") });
    expect(config.providers[1]?.capabilities_path).toBe(join(base, "contracts/ext.json"));
    expect(config.providers[1]?.command).toEqual(["ext-provider"]);
    expect(config.trust.default_policy).toEqual({ require_signature: { keys: ["keys/a.pub"] } });
    expect(config.providers[1]?.trust).toEqual({ require_signature: { keys: ["keys/ext.pub"] } });
  });

  it("resolveConfigPaths is pure", () => {
    const { config } = parseConfigText('[run_state_store]\ntype = "sqlite"\npath = "a.db"\n');
    const resolved = resolveConfigPaths(config, "/base");
    expect(resolved.run_state_store.path).toBe("/base/a.db");
    expect(config.run_state_store.path).toBe("a.db");
  });
});

describe("file errors", () => {
  it("rejects files over 1 MiB", async () => {
    const cwd = directoryWith({ "big.toml": `# ${"x".repeat(1_048_576)}\n` });
    const error = await loadError(() => loadConfig({ path: "big.toml", cwd }));
    expect(error.message).toBe("invalid config: config file exceeds size limit");
  });

  it("rejects files that are not UTF-8", async () => {
    const cwd = directoryWith({ "latin1.toml": Uint8Array.from([0x23, 0x20, 0xe9, 0x0a]) });
    const error = await loadError(() => loadConfig({ path: "latin1.toml", cwd }));
    expect(error.message).toBe("invalid config: config file must be utf-8");
  });

  it("reports TOML syntax errors with their line", async () => {
    const cwd = directoryWith({ "broken.toml": "[server]\ntransport = \n" });
    const error = await loadError(() => loadConfig({ path: "broken.toml", cwd }));
    expect(error.message).toMatch(/^config parse error: .* at line 2, column \d+$/);
    expect(error.code).toBe("config_parse");
  });
});

describe("validation messages", () => {
  const http = '[server]\ntransport = "http"\nbind = "127.0.0.1:4000"\n';
  const bearer = `${http}[server.auth]\nmode = "bearer_token"\n`;
  const quoted = (count: number, make: (index: number) => string) =>
    Array.from({ length: count }, (_, index) => JSON.stringify(make(index))).join(", ");
  const assetcore = '[namespace.authority]\nmode = "assetcore_http"\nassetcore = { base_url = "https://ac" }\n';
  const mcp = '[[providers]]\nname = "ext"\ntype = "mcp"\ncapabilities_path = "c.json"\n';

  const cases: Array<[toml: string, path: string, message: string]> = [
    ['[server]\ntransport = "http"\n', "server.bind", "http/sse transport requires bind address"],
    ['[server]\ntransport = "sse"\nbind = "localhost:4000"\n', "server.bind", "invalid bind address"],
    ['[server]\ntransport = "http"\nbind = "127.0.0.1"\n', "server.bind", "invalid bind address"],
    [
      '[server]\ntransport = "http"\nbind = "0.0.0.0:8080"\n',
      "server.bind",
      "non-loopback bind disallowed without auth policy",
    ],
    [
      '[server.auth]\nmode = "bearer_token"\nbearer_tokens = ["t"]\n',
      "server.auth.mode",
      "stdio transport only supports local_only auth",
    ],
    ['[server.tls]\ncert_path = "c"\nkey_path = "k"\n', "server.tls", "stdio transport does not support tls"],
    ["[server]\nmax_body_bytes = 0\n", "server.max_body_bytes", "max_body_bytes must be greater than zero"],
    ["[server.limits]\nmax_inflight = 0\n", "server.limits.max_inflight", "max_inflight must be greater than zero"],
    [
      "[server.limits.rate_limit]\nmax_requests = 0\n",
      "server.limits.rate_limit.max_requests",
      "rate_limit max_requests must be greater than zero",
    ],
    [
      "[server.limits.rate_limit]\nmax_requests = 100001\n",
      "server.limits.rate_limit.max_requests",
      "rate_limit max_requests too large",
    ],
    [
      "[server.limits.rate_limit]\nwindow_ms = 99\n",
      "server.limits.rate_limit.window_ms",
      "rate_limit window_ms must be between 100 and 60000",
    ],
    [
      "[server.limits.rate_limit]\nmax_entries = 65537\n",
      "server.limits.rate_limit.max_entries",
      "rate_limit max_entries too large",
    ],
    [bearer, "server.auth.bearer_tokens", "bearer_token auth requires bearer_tokens"],
    [`${http}[server.auth]\nmode = "mtls"\n`, "server.auth.mtls_subjects", "mtls auth requires mtls_subjects"],
    [
      "[server.auth]\ntenant_isolation = true\n",
      "server.auth.tenant_isolation",
      "tenant_isolation requires principals",
    ],
    [`${bearer}bearer_tokens = [${quoted(65, (i) => `t${i}`)}]\n`, "server.auth.bearer_tokens", "too many auth tokens"],
    [`${bearer}bearer_tokens = [" "]\n`, "server.auth.bearer_tokens[0]", "auth token must be non-empty"],
    [`${bearer}bearer_tokens = ["${"t".repeat(257)}"]\n`, "server.auth.bearer_tokens[0]", "auth token too long"],
    [`${bearer}bearer_tokens = [" tok"]\n`, "server.auth.bearer_tokens[0]", "auth token must not contain whitespace"],
    [
      `${http}[server.auth]\nmode = "mtls"\nmtls_subjects = [${quoted(65, (i) => `CN=${i}`)}]\n`,
      "server.auth.mtls_subjects",
      "too many mTLS subjects",
    ],
    ['[server.auth]\nallowed_tools = ["nope"]\n', "server.auth.allowed_tools[0]", "unknown tool in allowlist: nope"],
    [
      `[server.auth]\nallowed_tools = [${quoted(129, () => "precheck")}]\n`,
      "server.auth.allowed_tools",
      "too many tool allowlist entries",
    ],
    [
      '[[server.auth.principals]]\nsubject = " "\n',
      "server.auth.principals[0].subject",
      "auth.principals.subject must be non-empty",
    ],
    [
      `[server.auth]\nprincipals = [${Array.from({ length: 65 }, () => '{ subject = "s" }').join(", ")}]\n`,
      "server.auth.principals",
      "too many principal mappings",
    ],
    [
      `${http}[server.tls]\ncert_path = ""\nkey_path = "k"\n`,
      "server.tls.cert_path",
      "tls.cert_path must be non-empty",
    ],
    [
      '[server.feedback.scenario_next]\ndefault = "evidence"\n',
      "server.feedback.scenario_next.default",
      "server.feedback.scenario_next.default exceeds max",
    ],
    [
      '[server.feedback.scenario_next]\nlocal_only_default = "evidence"\n',
      "server.feedback.scenario_next.local_only_default",
      "server.feedback.scenario_next.local_only_default exceeds max",
    ],
    ['[server.tools]\ndenylist = ["x"]\n', "server.tools.denylist[0]", "unknown tool in server.tools list: x"],
    ['[server]\ntrusted_proxies = ["10.0.0.0/33"]\n', "server.trusted_proxies[0]", "expected an IP address or CIDR"],
    [
      `[dev]\npermissive = true\n${assetcore}`,
      "dev.permissive",
      "dev.permissive not allowed when namespace.authority.mode=assetcore_http",
    ],
    [
      `[server]\nmode = "dev_permissive"\n${assetcore}`,
      "dev.permissive",
      "dev.permissive not allowed when namespace.authority.mode=assetcore_http",
    ],
    ["[dev]\npermissive_ttl_days = 0\n", "dev.permissive_ttl_days", "must be at least 1"],
    [
      "[namespace]\nallow_default = true\n",
      "namespace.default_tenants",
      "namespace.allow_default requires namespace.default_tenants",
    ],
    ["[namespace]\ndefault_tenants = [0]\n", "namespace.default_tenants[0]", "must be at least 1"],
    [
      '[namespace.authority]\nmode = "assetcore_http"\n',
      "namespace.authority.assetcore",
      "namespace.authority.mode=assetcore_http requires namespace.authority.assetcore",
    ],
    [
      '[namespace.authority.assetcore]\nbase_url = "https://ac"\nconnect_timeout_ms = 50\n',
      "namespace.authority.assetcore.connect_timeout_ms",
      "connect_timeout_ms must be between 100 and 10000 milliseconds",
    ],
    [
      "[validation]\nstrict = false\n",
      "validation.strict",
      "validation.strict=false requires validation.allow_permissive=true",
    ],
    ['[policy]\nengine = "static"\n', "policy.static", "policy.engine=static requires policy.static"],
    [
      '[policy]\nengine = "deny_all"\n[policy.static]\n',
      "policy.static",
      "policy.static only allowed when engine=static",
    ],
    [
      '[policy]\nengine = "static"\n[policy.static]\ndefault = "error"\n',
      "policy.static.default",
      "static policy default must be permit or deny",
    ],
    [
      '[policy]\nengine = "static"\n[[policy.static.rules]]\neffect = "deny"\n',
      "policy.static.rules[0]",
      "rule must include at least one match criterion",
    ],
    ['[run_state_store]\ntype = "sqlite"\n', "run_state_store.path", "sqlite run_state_store requires path"],
    ['[run_state_store]\npath = "x.db"\n', "run_state_store.path", "memory run_state_store must not set path"],
    [
      "[run_state_store]\nmax_versions = 0\n",
      "run_state_store.max_versions",
      "run_state_store.max_versions must be greater than zero",
    ],
    ['[schema_registry]\ntype = "sqlite"\n', "schema_registry.path", "sqlite schema_registry requires path"],
    ['[schema_registry]\npath = "x.db"\n', "schema_registry.path", "memory schema_registry must not set path"],
    [
      '[run_state_store]\ntype = "postgres"\nurl = "mysql://dg:pw@db/dg"\n',
      "run_state_store.url",
      "run_state_store.url must be a postgres:// or postgresql:// URL",
    ],
    [
      '[run_state_store]\ntype = "postgres"\npath = "x.db"\n',
      "run_state_store.path",
      "postgres run_state_store must not set path",
    ],
    [
      '[run_state_store]\ntype = "sqlite"\npath = "x.db"\nurl = "postgres://db/dg"\n',
      "run_state_store.url",
      "sqlite run_state_store must not set url",
    ],
    [
      '[run_state_store]\ntype = "sqlite"\npath = "x.db"\nmax_connections = 5\n',
      "run_state_store.max_connections",
      "sqlite run_state_store must not set max_connections",
    ],
    [
      '[run_state_store]\ntype = "postgres"\nmax_connections = 0\n',
      "run_state_store.max_connections",
      "run_state_store.max_connections must be 1 to 1000",
    ],
    ['[schema_registry]\ntype = "postgres"\nurl = "db:5432"\n', "schema_registry.url", "schema_registry.url must be"],
    ['[schema_registry]\nurl = "postgres://db/dg"\n', "schema_registry.url", "memory schema_registry must not set url"],
    [
      "[schema_registry]\nmax_schema_bytes = 0\n",
      "schema_registry.max_schema_bytes",
      "schema_registry.max_schema_bytes must be between 1 and 10485760",
    ],
    [
      '[[anchors.providers]]\nprovider_id = "p"\nanchor_type = "a"\nrequired_fields = ["f"]\n' +
        '[[anchors.providers]]\nprovider_id = "p"\nanchor_type = "a"\nrequired_fields = ["f"]\n',
      "anchors.providers[1].provider_id",
      "duplicate anchors.providers.provider_id: p",
    ],
    [
      '[provider_discovery]\nallowlist = [""]\n',
      "provider_discovery.allowlist[0]",
      "provider_discovery.allowlist entries must be non-empty",
    ],
    ["[docs]\nmax_sections = 11\n", "docs.max_sections", "docs.max_sections must be between 1 and 10"],
    [
      '[runpack_storage]\ntype = "object_store"\nprovider = "s3"\nbucket = "b"\nendpoint = "http://minio:9000"\n',
      "runpack_storage.endpoint",
      "runpack_storage.endpoint uses http:// and requires allow_http = true",
    ],
    [
      '[runpack_storage]\ntype = "object_store"\nprovider = "s3"\nbucket = "b"\nprefix = "a/../b"\n',
      "runpack_storage.prefix",
      "runpack_storage.prefix must not contain . or .. segments",
    ],
    [
      '[runpack_storage]\ntype = "object_store"\nprovider = "s3"\nbucket = " "\n',
      "runpack_storage.bucket",
      "runpack_storage.bucket must be non-empty",
    ],
    [
      '[runpack_storage]\ntype = "filesystem"\nattestation = true\n',
      "runpack_storage.attestation",
      "runpack_storage.attestation requires runpack_storage.signing_key",
    ],
    [
      '[runpack_storage]\ntype = "filesystem"\nattestation_verifier_id = "server"\n',
      "runpack_storage.attestation_verifier_id",
      "runpack_storage.attestation_verifier_id must be a URI",
    ],
    [
      '[[providers]]\nname = "time"\ntype = "builtin"\n[[providers]]\nname = "time"\ntype = "builtin"\n',
      "providers[1].name",
      "duplicate provider name: time",
    ],
    ['[[providers]]\nname = "foo"\ntype = "builtin"\n', "providers[0].name", "unknown builtin provider: foo"],
    [
      '[[providers]]\nname = "time"\ntype = "mcp"\ncommand = ["x"]\ncapabilities_path = "c.json"\n',
      "providers[0].name",
      "provider name reserved for builtin: time",
    ],
    [mcp, "providers[0].url", "mcp provider requires command or url"],
    [`${mcp}url = "http://provider"\n`, "providers[0].url", "insecure http requires allow_insecure_http"],
    [
      '[[providers]]\nname = "ext"\ntype = "mcp"\ncommand = ["x"]\n',
      "providers[0].capabilities_path",
      "mcp provider requires capabilities_path",
    ],
    [`${mcp}command = ["x"]\nconfig = { a = 1 }\n`, "providers[0].config", "mcp provider does not accept config"],
    [
      `${mcp}url = "https://p"\ntimeouts = { connect_timeout_ms = 5000, request_timeout_ms = 1000 }\n`,
      "providers[0].timeouts.request_timeout_ms",
      "request_timeout_ms must be >= connect_timeout_ms",
    ],
    ['[server]\ntransport = "carrier"\n', "server.transport", 'expected one of "stdio", "http", "sse"'],
    ["[docs]\nmax_docs = 1.5\n", "docs.max_docs", "expected an integer"],
    ["[server.tls]\nkey_path = 'k'\n", "server.tls.cert_path", "missing field"],
  ];

  it.each(cases.map(([toml, path, message]) => ({ toml, path, message })))(
    "$path: $message",
    ({ toml, path, message }) => {
      const error = configError(() => validateServerConfig(parseConfigText(toml).config));
      expect(error.message).toMatch(/^invalid config: /);
      expect(error.code).toBe("config_invalid");
      const issues = (error.details?.issues ?? []) as Array<{ path: string; message: string }>;
      expect(
        issues.some((issue) => issue.path === path && issue.message.includes(message)),
        error.message,
      ).toBe(true);
    },
  );

  it("accepts a postgres store with or without url, and never quotes a url in its errors", () => {
    const { config } = parseConfigText(
      '[run_state_store]\ntype = "postgres"\nurl = "postgresql://dg:pw@db:5432/dg?sslmode=verify-full"\n' +
        '[schema_registry]\ntype = "postgres"\n',
    );
    expect(config.run_state_store).toMatchObject({
      type: "postgres",
      url: "postgresql://dg:pw@db:5432/dg?sslmode=verify-full",
    });
    expect(config.schema_registry.url).toBeUndefined();
    for (const url of ["http://dg:Secret-Pw-1@db/dg", "postgres://dg:Secret-Pw-1@[db/dg", "Secret-Pw-1"]) {
      const error = configError(() => parseConfigText(`[run_state_store]\ntype = "postgres"\nurl = "${url}"\n`));
      expect(error.message).toContain("run_state_store.url must be a postgres:// or postgresql:// URL");
      expect(JSON.stringify({ message: error.message, details: error.details })).not.toContain("Secret-Pw-1");
    }
  });

  it("reports errors in the reference's validation order", () => {
    const error = configError(() =>
      parseConfigText(
        '[[providers]]\nname = "foo"\ntype = "builtin"\n[validation]\nstrict = false\n[server]\nmax_body_bytes = 0\n',
      ),
    );
    const first = error.message.indexOf("server.max_body_bytes");
    const second = error.message.indexOf("validation.strict");
    const third = error.message.indexOf("providers[0].name");
    expect(error.message.startsWith("invalid config: server.max_body_bytes: ")).toBe(true);
    expect(first < second && second < third).toBe(true);
  });
});

describe("unknown keys", () => {
  it("warns with the nearest valid key", () => {
    const { warnings, config } = parseConfigText('[server]\ntrasport = "http"\n');
    expect(warnings).toEqual(["unknown key server.trasport; did you mean server.transport?"]);
    expect(config.server.transport).toBe("stdio");
  });

  it("rejects them under strict", () => {
    const error = configError(() => parseConfigText('[server]\ntrasport = "http"\n', { strict: true }));
    expect(error.message).toBe("invalid config: unknown key server.trasport; did you mean server.transport?");
  });

  it("omits the suggestion when nothing is close", () => {
    expect(parseConfigText("[server]\nzzzzzzzz = 1\n").warnings).toEqual(["unknown key server.zzzzzzzz"]);
  });

  it("finds them in unknown tables, arrays of tables, unions and provider timeouts", () => {
    const text = `
[servr]
[[server.auth.principals]]
subject = "loopback"
polcy_class = "prod"
[trust]
default_policy = { require_signature = { keys = ["k"] } }
[runpack_storage]
type = "object_store"
provider = "s3"
bucket = "b"
rot = "x"
[[providers]]
name = "ext"
type = "mcp"
url = "https://p"
capabilities_path = "c.json"
timeouts = { conect_timeout_ms = 300 }
`;
    expect(parseConfigText(text).warnings).toEqual([
      "unknown key servr; did you mean server?",
      "unknown key server.auth.principals[0].polcy_class; did you mean server.auth.principals[0].policy_class?",
      "unknown key runpack_storage.rot",
      "unknown key providers[0].timeouts.conect_timeout_ms; did you mean providers[0].timeouts.connect_timeout_ms?",
    ]);
  });

  it("accepts [client] tables and builtin provider config without warning", () => {
    const text =
      '[client.auth_profiles.ci]\ntoken = "x"\nurl = "http://127.0.0.1:4000/rpc"\n' +
      '[[providers]]\nname = "env"\ntype = "builtin"\nconfig = { overrides = { ANY = "value" } }\n';
    expect(parseConfigText(text, { strict: true }).warnings).toEqual([]);
  });

  it("names unknown keys in a validation error too", () => {
    const error = configError(() => parseConfigText("[server.tls]\ncert_pth = 'c'\nkey_path = 'k'\n"));
    expect(error.message).toContain("server.tls.cert_path: missing field");
    expect(error.message).toContain("unknown key server.tls.cert_pth; did you mean server.tls.cert_path?");
  });

  it("measures Damerau–Levenshtein distance", () => {
    expect(editDistance("trasport", "transport")).toBe(1);
    expect(editDistance("tarnsport", "transport")).toBe(1);
    expect(editDistance("", "abc")).toBe(3);
    expect(nearestKey("bnid", ["bind", "mode"])).toBe("bind");
    expect(nearestKey("xyz", ["bind", "mode"])).toBeNull();
  });
});

describe("helpers", () => {
  it("lists the reference's tools and runtime_action_evaluate", () => {
    const reference = (readSharedJson("fixtures/reference/contract/tooling.json") as Array<{ name: string }>).map(
      (tool) => tool.name,
    );
    expect(toolNames()).toEqual([...reference, "runtime_action_evaluate"]);
  });
});

describe("JSON Schema", () => {
  const schema = configJsonSchema();
  const validate = new Ajv2020({ strict: true, allErrors: true }).compile(schema);
  const plain = (text: string) => toPlainJson(parse(text, { integersAsBigInt: true }) as JsonValue);

  it("is a draft 2020-12 schema", () => {
    expect(schema.$schema).toBe("https://json-schema.org/draft/2020-12/schema");
  });

  it.each(referencePresetFiles)("accepts the reference preset %s", (name) => {
    expect(validate(plain(readFileSync(join(REFERENCE_PRESETS, name), "utf8"))), JSON.stringify(validate.errors)).toBe(
      true,
    );
  });

  it.each(listPresets())("accepts our preset %s", (name) => {
    expect(validate(plain(readFileSync(presetPath(name), "utf8"))), JSON.stringify(validate.errors)).toBe(true);
  });

  it("accepts an empty file and rejects misspelled keys and bad values", () => {
    expect(validate({})).toBe(true);
    expect(validate({ client: { auth_profiles: { x: { token: "t" } } } })).toBe(true);
    expect(validate({ server: { trasport: "http" } })).toBe(false);
    expect(validate({ server: { transport: "carrier" } })).toBe(false);
    expect(validate({ server: { limits: { rate_limit: { window_ms: 5 } } } })).toBe(false);
    expect(validate({ runpack_storage: { type: "filesystem", bucket: "b" } })).toBe(false);
  });

  it("describes every key", () => {
    const undocumented: string[] = [];
    visitKeys(schema, "", (node: JsonSchemaNode, path: string) => {
      const isItem = path.endsWith("[]");
      if (path !== "" && !isItem && typeof node.description !== "string") undocumented.push(path);
    });
    expect(undocumented).toEqual([]);
  });
});

describe("docs/CONFIGURATION.md", () => {
  it("is up to date (run `npm run docs:config`)", () => {
    expect(readFileSync(configurationDocsPath(), "utf8")).toBe(renderConfigurationDocs());
  });
});
