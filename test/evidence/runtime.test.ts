import { generateKeyPairSync } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ControlPlane } from "../../src/core/run/control-plane.js";
import { decode } from "../../src/core/wire/common.js";
import { EvidenceConfig } from "../../src/evidence/disclosure.js";
import {
  buildEvidenceRuntime,
  type EvidenceRuntime,
  type EvidenceSettings,
  ProvidersConfig,
  ValidationConfig,
} from "../../src/evidence/registry.js";
import { AnchorsConfig } from "../../src/evidence/trust/anchors.js";
import { DevConfig, TrustConfig } from "../../src/evidence/trust/lanes.js";
import { parseJson } from "../../src/json/parse.js";
import { MemoryRunStateStore } from "../../src/store/memory/run-state.js";
import { logical, specFrom } from "../support/scenarios.js";

const REFERENCE_PROVIDER = fileURLToPath(new URL("../fixtures/providers/reference-provider.mjs", import.meta.url));
const root = mkdtempSync(join(tmpdir(), "dg-runtime-"));
let server: Server;
let port = 0;

beforeAll(async () => {
  mkdirSync(join(root, "evidence"));
  writeFileSync(join(root, "evidence/report.json"), '{"tests":{"failed":0,"passed":120},"coverage":0.91}');
  writeFileSync(join(root, "evidence/release.yaml"), "version: 2.4.1\napproved: true\n");
  mkdirSync(join(root, "contracts"));
  writeFileSync(
    join(root, "contracts/ext.json"),
    JSON.stringify({
      provider_id: "ext",
      name: "External",
      description: "test provider",
      transport: "mcp",
      config_schema: { type: "object" },
      checks: [
        {
          check_id: "query",
          description: "answers",
          determinism: "external",
          params_required: false,
          params_schema: { type: "object" },
          result_schema: { type: "object" },
          allowed_comparators: ["exists", "not_exists"],
          anchor_types: [],
          content_types: ["application/json"],
          examples: [],
        },
      ],
      notes: [],
    }),
  );
  const { publicKey } = generateKeyPairSync("ed25519");
  writeFileSync(join(root, "signer.pub"), Buffer.from(publicKey.export({ format: "jwk" }).x as string, "base64url"));
  server = createServer((request, response) => response.writeHead(request.url === "/health" ? 200 : 503).end("ok"));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(root, { recursive: true, force: true });
});

function settings(overrides: Partial<Record<keyof EvidenceSettings, string>> = {}): EvidenceSettings {
  const providers = `[
    {"name":"time","type":"builtin"},
    {"name":"env","type":"builtin","config":{"overrides":{"DEPLOY_ENV":"prod"}}},
    {"name":"json","type":"builtin","allow_raw":true,"config":{"root":"evidence","root_id":"evidence-root"}},
    {"name":"http","type":"builtin","trust":"audit","config":{"allow_http":true,"allowed_networks":["127.0.0.1/32"]}},
    {"name":"ext","type":"mcp","command":["node","${REFERENCE_PROVIDER}"],"capabilities_path":"contracts/ext.json"}
  ]`;
  const text = {
    providers,
    trust: "{}",
    dev: "{}",
    evidence: '{"allow_raw_values":true}',
    anchors: "{}",
    validation: "{}",
    ...overrides,
  };
  return {
    providers: decode(ProvidersConfig, parseJson(text.providers), "providers"),
    trust: decode(TrustConfig, parseJson(text.trust), "trust"),
    dev: decode(DevConfig, parseJson(text.dev), "dev"),
    evidence: decode(EvidenceConfig, parseJson(text.evidence), "evidence"),
    anchors: decode(AnchorsConfig, parseJson(text.anchors), "anchors"),
    validation: decode(ValidationConfig, parseJson(text.validation), "validation"),
  };
}

const condition = (
  id: string,
  provider: string,
  check: string,
  params: string,
  comparator: string,
  expected?: string,
) =>
  `{"condition_id":"${id}","query":{"provider_id":"${provider}","check_id":"${check}","params":${params}},
    "comparator":"${comparator}",${expected === undefined ? "" : `"expected":${expected},`}"policy_tags":[]}`;

const releaseSpec = (url: string) =>
  specFrom(`{
  "scenario_id": "release", "namespace_id": 2, "spec_version": "1", "policies": [], "schemas": [],
  "conditions": [
    ${condition("tests_pass", "json", "path", '{"file":"report.json","jsonpath":"$.tests.failed"}', "equals", "0")},
    ${condition("coverage", "json", "path", '{"file":"report.json","jsonpath":"$.coverage"}', "greater_than_or_equal", "0.9")},
    ${condition("approved", "json", "path", '{"file":"release.yaml","jsonpath":"$.approved"}', "equals", "true")},
    ${condition("prod", "env", "get", '{"key":"DEPLOY_ENV"}', "equals", '"prod"')},
    ${condition("site_up", "http", "status", `{"url":"${url}"}`, "equals", "200")},
    ${condition("ext_ok", "ext", "query", '{"mode":"ok"}', "exists")},
    ${condition("started", "time", "after", '{"timestamp":0}', "equals", "true")}
  ],
  "stages": [{"stage_id": "checks", "entry_packets": [], "advance_to": {"kind": "terminal"}, "timeout": null,
    "on_timeout": "fail", "gates": [{"gate_id": "quality", "requirement": {"And": [
      {"Condition":"tests_pass"},{"Condition":"coverage"},{"Condition":"approved"},{"Condition":"prod"},
      {"Condition":"site_up"},{"Condition":"ext_ok"},{"Condition":"started"}]}}]}]
}`);

async function decideOnce(runtime: EvidenceRuntime, url: string) {
  const spec = releaseSpec(url);
  runtime.validateSpec(spec);
  const store = new MemoryRunStateStore();
  const plane = new ControlPlane(spec, {
    store,
    evidence: runtime.pipeline,
    trust: runtime.trust,
    recordDisclosure: runtime.recordDisclosure,
  });
  const run = {
    tenant_id: 1n,
    namespace_id: 2n,
    run_id: "r",
    scenario_id: "release",
    dispatch_targets: [],
    policy_tags: [],
  };
  await plane.start(run, logical(1), false);
  const { result } = await plane.next({
    run_id: "r",
    tenant_id: 1n,
    namespace_id: 2n,
    trigger_id: "t-1",
    agent_id: "ci",
    time: logical(5),
    correlation_id: "req-1",
  });
  const records = (await store.load(run))?.gate_evals[0]?.evidence ?? [];
  return { result, records: new Map(records.map((record) => [record.condition_id, record])) };
}

describe("the evidence runtime built from configuration", () => {
  it("decides over real files, a real HTTP service, a child-process MCP provider, env and time", async () => {
    const runtime = await buildEvidenceRuntime(
      settings({
        anchors:
          '{"providers":[{"provider_id":"json","anchor_type":"file_path_rooted","required_fields":["path","root_id"]}]}',
      }),
      { cwd: root },
    );
    try {
      const { result, records } = await decideOnce(runtime, `http://127.0.0.1:${port}/health`);
      expect(
        [...records.values()].map((record) => [
          record.condition_id,
          record.status,
          record.result.error?.message ?? null,
        ]),
      ).toEqual([
        ["approved", "True", null],
        ["coverage", "True", null],
        ["ext_ok", "True", null],
        ["prod", "True", null],
        ["site_up", "True", null],
        ["started", "True", null],
        ["tests_pass", "True", null],
      ]);
      expect(result.decision.outcome).toEqual({ kind: "complete", stage_id: "checks" });
      expect(records.get("approved")?.result).toMatchObject({
        value: { kind: "json", value: true },
        content_type: "application/yaml",
        evidence_anchor: {
          anchor_type: "file_path_rooted",
          anchor_value: '{"path":"release.yaml","root_id":"evidence-root"}',
        },
      });
      // As by the reference, values are recorded whether or not the provider opted in to disclosure.
      expect(records.get("prod")?.result).toMatchObject({
        value: { kind: "json", value: "prod" },
        evidence_anchor: { anchor_value: "DEPLOY_ENV" },
      });
      expect(records.get("ext_ok")?.result.value).not.toBeNull();
    } finally {
      await runtime.close();
    }
  });

  it("records only disclosed values under record_raw_values = false", async () => {
    const runtime = await buildEvidenceRuntime(
      settings({ evidence: '{"allow_raw_values":true,"record_raw_values":false}' }),
      { cwd: root },
    );
    try {
      const { result, records } = await decideOnce(runtime, `http://127.0.0.1:${port}/health`);
      expect(result.decision.outcome).toEqual({ kind: "complete", stage_id: "checks" });
      // `json` opted in (`allow_raw`): its values are kept.
      expect(records.get("approved")?.result).toMatchObject({
        value: { kind: "json", value: true },
        content_type: "application/yaml",
      });
      // Providers that did not opt in keep their hash and anchor but not their value.
      expect(records.get("prod")?.result).toMatchObject({
        value: null,
        content_type: null,
        evidence_anchor: { anchor_value: "DEPLOY_ENV" },
      });
      expect(records.get("prod")?.result.evidence_hash?.value).toMatch(/^[0-9a-f]{64}$/);
      expect(records.get("ext_ok")?.result.value).toBeNull();
    } finally {
      await runtime.close();
    }
  });

  it("holds the gate when a service is down, naming the failing condition", async () => {
    const runtime = await buildEvidenceRuntime(settings(), { cwd: root });
    try {
      const { result, records } = await decideOnce(runtime, `http://127.0.0.1:${port}/down`);
      expect(result.decision.outcome.kind).toBe("hold");
      expect(records.get("site_up")?.status).toBe("False");
    } finally {
      await runtime.close();
    }
  });

  it("enforces a required signature by default, so unsigned providers fail closed unless set to audit", async () => {
    const runtime = await buildEvidenceRuntime(
      settings({ trust: '{"default_policy":{"require_signature":{"keys":["signer.pub"]}}}' }),
      { cwd: root },
    );
    try {
      const { result, records } = await decideOnce(runtime, `http://127.0.0.1:${port}/health`);
      expect(result.decision.outcome.kind).toBe("hold");
      expect(records.get("site_up")?.status).toBe("True");
      expect(records.get("prod")?.result.error?.message).toBe("evidence provider error: missing evidence signature");
    } finally {
      await runtime.close();
    }
  });

  it("refuses a spec its contracts do not allow", async () => {
    const runtime = await buildEvidenceRuntime(settings(), { cwd: root });
    try {
      const spec = specFrom(
        JSON.stringify({
          scenario_id: "s",
          namespace_id: 2,
          spec_version: "1",
          policies: [],
          schemas: [],
          conditions: [
            {
              condition_id: "c",
              query: { provider_id: "ext", check_id: "query" },
              comparator: "equals",
              expected: {},
              policy_tags: [],
            },
          ],
          stages: [
            {
              stage_id: "a",
              entry_packets: [],
              gates: [],
              advance_to: { kind: "terminal" },
              timeout: null,
              on_timeout: "fail",
            },
          ],
        }),
      );
      expect(() => runtime.validateSpec(spec)).toThrow(/^comparator_not_allowed: condition c: /);
    } finally {
      await runtime.close();
    }
  });
});

describe("[[providers]] validation", () => {
  const refused: Array<[string, string]> = [
    [
      '[{"name":"time","type":"builtin","command":["x"]}]',
      "providers[0].command: builtin provider does not accept command",
    ],
    ['[{"name":"time","type":"builtin","url":"https://x"}]', "providers[0].url: builtin provider does not accept url"],
    ['[{"name":"clock","type":"builtin"}]', "providers[0].name: unknown builtin provider: clock"],
    [
      '[{"name":"time","type":"mcp","command":["x"],"capabilities_path":"c.json"}]',
      "provider name reserved for builtin: time",
    ],
    ['[{"name":"ext","type":"mcp","command":["x"]}]', "mcp provider requires capabilities_path"],
    [
      '[{"name":"ext","type":"mcp","command":["x"],"capabilities_path":"c","config":{}}]',
      "mcp provider does not accept config",
    ],
    [
      '[{"name":"time","type":"builtin"},{"name":"time","type":"builtin"}]',
      "providers[1].name: duplicate provider name: time",
    ],
    ['[{"name":" time","type":"builtin"}]', "name must be non-blank and trimmed"],
  ];
  for (const [text, message] of refused) {
    it(message, () => {
      expect(() => decode(ProvidersConfig, parseJson(text), "providers")).toThrow(message);
    });
  }

  it("reports an unreadable key or contract, and a bad provider config, before serving", async () => {
    await expect(
      buildEvidenceRuntime(settings({ trust: '{"default_policy":{"require_signature":{"keys":["missing.pub"]}}}' }), {
        cwd: root,
      }),
    ).rejects.toThrow("unable to read public key");
    const badContract = `[{"name":"ext","type":"mcp","command":["node"],"capabilities_path":"nope.json"}]`;
    await expect(buildEvidenceRuntime(settings({ providers: badContract }), { cwd: root })).rejects.toMatchObject({
      code: "contract_read_failed",
    });
    const badConfig = '[{"name":"http","type":"builtin","config":{"timeout_ms":-5}}]';
    await expect(buildEvidenceRuntime(settings({ providers: badConfig }), { cwd: root })).rejects.toThrow(
      /providers\[0\]\.config\.timeout_ms/,
    );
  });
});
