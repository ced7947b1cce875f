import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseJson } from "../../src/json/parse.js";
import type { JsonObject, JsonValue } from "../../src/json/value.js";
import { compactJson } from "../../src/json/write.js";
import { ENV_KEY_GATE } from "../support/scenarios.js";
import { startServerProcess } from "../support/server-process.js";

const TOKEN = "planted-bearer-T0KEN-9f3a";
const ENV_SECRET = "planted-env-s3cret-77c1";

describe("secrets never reach logs or runpacks", () => {
  it(
    "a full run under record_raw_values = false leaves no trace of the token or of withheld evidence",
    { timeout: 60_000 },
    async () => {
      const server = await startServerProcess(`
[server]
transport = "http"
bind = "127.0.0.1:0"
[server.auth]
mode = "bearer_token"
bearer_tokens = ["${TOKEN}"]
[[server.auth.principals]]
subject = "token:${fingerprintOf(TOKEN)}"
policy_class = "dev"
roles = [{ name = "TenantAdmin" }]
[server.audit]
path = "logs/audit.jsonl"
log_precheck_payloads = false
[evidence]
record_raw_values = false
[[providers]]
name = "env"
type = "builtin"
config = { overrides = { DEPLOY_KEY = "${ENV_SECRET}" } }
`);
      const call = async (name: string, args: JsonValue, token = TOKEN) => {
        const response = await fetch(`${server.url}/rpc`, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            authorization: `Bearer ${token}`,
            "x-correlation-id": "run-42",
          },
          body: compactJson({ jsonrpc: "2.0", id: 1n, method: "tools/call", params: { name, arguments: args } }),
        });
        return parseJson(await response.text()) as JsonObject;
      };
      const spec = ENV_KEY_GATE;
      const run = { run_id: "r", tenant_id: 1n, namespace_id: 2n };
      expect((await call("scenario_define", { spec })).error).toBeUndefined();
      await call("scenario_start", {
        scenario_id: "deploy",
        run_config: { ...run, scenario_id: "deploy", dispatch_targets: [], policy_tags: [] },
        started_at: { kind: "logical", value: 1n },
        issue_entry_packets: false,
      });
      const next = await call("scenario_next", {
        scenario_id: "deploy",
        request: { ...run, trigger_id: "t", agent_id: "ci", time: { kind: "logical", value: 2n } },
        feedback: "evidence",
      });
      expect(((next.result as JsonObject).content as Array<{ json: JsonObject }>)[0]?.json.status).toBe("completed");
      const queried = await call("evidence_query", {
        query: { provider_id: "env", check_id: "get", params: { key: "DEPLOY_KEY" } },
        context: {
          ...run,
          scenario_id: "deploy",
          stage_id: "ship",
          trigger_id: "q",
          trigger_time: { kind: "logical", value: 3n },
        },
      });
      await call("providers_list", {}, "Bearer-but-wrong-token-guess");
      const exportTo = (outputDir: string) =>
        call("runpack_export", {
          scenario_id: "deploy",
          ...run,
          output_dir: outputDir,
          generated_at: { kind: "logical", value: 9n },
          include_verification: true,
        });
      // A remote (bearer) caller's paths are confined to the runpack root (D9).
      expect((await exportTo(join(server.dir, "elsewhere"))).error).toMatchObject({ code: -32040n });
      expect((await exportTo("../escape")).error).toMatchObject({ code: -32040n });
      expect((await exportTo("deploy-run")).error).toBeUndefined();
      const runpackText = readdirSync(join(server.dir, "runpacks/deploy-run"), { recursive: true, withFileTypes: true })
        .filter((entry) => entry.isFile())
        .map((entry) => readFileSync(join(entry.parentPath, entry.name), "utf8"))
        .join("\n");
      const audit = readFileSync(join(server.dir, "logs/audit.jsonl"), "utf8");
      await server.stop();
      const logs = `${audit}\n${server.stderr()}`;

      expect(
        audit
          .split("\n")
          .filter(Boolean)
          .map((line) => JSON.parse(line).event),
      ).toEqual(expect.arrayContaining(["mcp_request", "tenant_authz"]));
      expect(server.stderr()).toContain('"event":"mcp_tool_authz"');
      const responses = compactJson([next, queried]);
      for (const secret of [TOKEN, ENV_SECRET]) {
        expect(logs).not.toContain(secret);
        expect(runpackText).not.toContain(secret);
        expect(responses).not.toContain(secret);
      }
      expect(runpackText).toContain('"evidence_anchor":{"anchor_type":"env","anchor_value":"DEPLOY_KEY"}');
    },
  );
});

function fingerprintOf(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}
