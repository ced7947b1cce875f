import { describe, expect, it } from "vitest";
import type { EvidenceContext } from "../../src/core/run/evidence.js";
import type { EvidenceQuery } from "../../src/core/spec/schema.js";
import { decode } from "../../src/core/wire/common.js";
import { createEnvProvider, EnvProviderConfig, envConfigWarnings } from "../../src/evidence/builtin/env.js";
import { createTimeProvider } from "../../src/evidence/builtin/time.js";
import { parseJson } from "../../src/json/parse.js";
import type { JsonValue } from "../../src/json/value.js";

const context = (time: EvidenceContext["trigger_time"]): EvidenceContext => ({
  tenant_id: 1n,
  namespace_id: 2n,
  run_id: "run-1",
  scenario_id: "s",
  stage_id: "stage",
  trigger_id: "t-1",
  trigger_time: time,
  correlation_id: null,
});
const logical = (value: bigint) => context({ kind: "logical", value });
const millis = (value: bigint) => context({ kind: "unix_millis", value });
const query = (provider: string, check: string, params?: string): EvidenceQuery => ({
  provider_id: provider,
  check_id: check,
  params: params === undefined ? undefined : (parseJson(params) as NonNullable<JsonValue>),
});

describe("time provider", () => {
  const time = createTimeProvider();

  it("answers now, after and before from the trigger time with its anchor", async () => {
    expect(await time.query(query("time", "now"), logical(7n))).toMatchObject({
      value: { kind: "json", value: 7n },
      evidence_anchor: { anchor_type: "trigger_time_logical", anchor_value: "7" },
      lane: "verified",
      content_type: "application/json",
    });
    const after = await time.query(query("time", "after", '{"timestamp":5}'), logical(6n));
    expect(after.value).toEqual({ kind: "json", value: true });
    expect((await time.query(query("time", "after", '{"timestamp":6}'), logical(6n))).value?.value).toBe(false);
    expect((await time.query(query("time", "before", '{"timestamp":6}'), logical(6n))).value?.value).toBe(false);
    expect((await time.query(query("time", "before", '{"timestamp":7}'), logical(6n))).value?.value).toBe(true);
  });

  it("reads RFC 3339 thresholds for unix-millis triggers, truncating to milliseconds", async () => {
    const at = 1_700_000_000_000n;
    const iso = new Date(Number(at)).toISOString().replace(".000Z", ".0009Z");
    const result = await time.query(query("time", "after", `{"timestamp":"${iso}"}`), millis(at));
    expect(result.value?.value).toBe(false);
    expect(result.evidence_anchor).toEqual({ anchor_type: "trigger_time_unix_millis", anchor_value: String(at) });
    expect((await time.query(query("time", "after", `{"timestamp":"${iso}"}`), millis(at + 1n))).value?.value).toBe(
      true,
    );
  });

  const failures: Array<[string, string | undefined, EvidenceContext, string]> = [
    ["after", undefined, logical(1n), "time check requires params"],
    ["after", "[1]", logical(1n), "time params must be an object"],
    ["after", "{}", logical(1n), "missing timestamp param"],
    ["after", '{"timestamp":"2024-01-01T00:00:00Z"}', logical(1n), "logical timestamp must be numeric"],
    ["after", '{"timestamp":-1}', logical(1n), "logical timestamp must be unsigned"],
    ["after", '{"timestamp":1.5}', logical(1n), "logical timestamp must be unsigned"],
    ["after", '{"timestamp":9223372036854775808}', millis(1n), "timestamp exceeds i64 range"],
    ["after", '{"timestamp":1.5}', millis(1n), "invalid numeric timestamp"],
    ["after", '{"timestamp":"yesterday"}', millis(1n), "invalid rfc3339 timestamp"],
    ["after", '{"timestamp":true}', millis(1n), "timestamp must be number or string"],
    ["tomorrow", undefined, logical(1n), "unsupported time check"],
  ];
  for (const [check, params, ctx, message] of failures) {
    it(`fails with "${message}"`, async () => {
      await expect(time.query(query("time", check, params), ctx)).rejects.toMatchObject({
        code: "provider_error",
        message: `evidence provider error: ${message}`,
      });
    });
  }

  it("refuses logical triggers when allow_logical is off, after checking params", async () => {
    const strict = createTimeProvider({ allow_logical: false });
    await expect(strict.query(query("time", "now"), logical(1n))).rejects.toThrow(
      "logical timestamps are not permitted",
    );
    await expect(strict.query(query("time", "after"), logical(1n))).rejects.toThrow("time check requires params");
    await expect(strict.query(query("time", "after", '{"timestamp":1}'), logical(1n))).rejects.toThrow(
      "logical timestamps are not permitted",
    );
    expect((await strict.query(query("time", "now"), millis(5n))).value?.value).toBe(5n);
  });
});

describe("env provider", () => {
  const config = (toml: string) => decode(EnvProviderConfig, parseJson(toml), "config");
  const environment = { HOME_DIR: "/home/x", EMPTY: "", SECRET_TOKEN: "s3cr3t", BIG: "x".repeat(70_000) };
  const env = createEnvProvider(config("{}"), environment);

  it("returns a set variable as text with the key as anchor, and an unset one without a value", async () => {
    expect(await env.query(query("env", "get", '{"key":"HOME_DIR"}'), logical(1n))).toMatchObject({
      value: { kind: "json", value: "/home/x" },
      content_type: "text/plain",
      evidence_anchor: { anchor_type: "env", anchor_value: "HOME_DIR" },
      error: null,
    });
    expect((await env.query(query("env", "get", '{"key":"EMPTY"}'), logical(1n))).value?.value).toBe("");
    expect(await env.query(query("env", "get", '{"key":"NOPE"}'), logical(1n))).toMatchObject({
      value: null,
      content_type: null,
      error: null,
      evidence_anchor: { anchor_type: "env", anchor_value: "NOPE" },
    });
  });

  it("applies the deny list before the allow list, and overrides replace the environment", async () => {
    const listed = createEnvProvider(
      config('{"allowlist":["HOME_DIR","SECRET_TOKEN"],"denylist":["SECRET_TOKEN"]}'),
      environment,
    );
    expect((await listed.query(query("env", "get", '{"key":"HOME_DIR"}'), logical(1n))).value?.value).toBe("/home/x");
    for (const key of ["SECRET_TOKEN", "EMPTY"]) {
      await expect(listed.query(query("env", "get", `{"key":"${key}"}`), logical(1n))).rejects.toThrow(
        "evidence provider error: env key blocked by policy",
      );
    }
    const overridden = createEnvProvider(config('{"overrides":{"A":"1"}}'), environment);
    expect((await overridden.query(query("env", "get", '{"key":"A"}'), logical(1n))).value?.value).toBe("1");
    expect((await overridden.query(query("env", "get", '{"key":"HOME_DIR"}'), logical(1n))).value).toBeNull();
  });

  it("warns about an open environment only without an allowlist and without overrides", () => {
    expect(envConfigWarnings(config("{}"))).toEqual([
      "no allowlist: any caller who may define a scenario can read every environment variable of this server " +
        "(a `contains` condition reveals a value one character at a time); set config.allowlist to the " +
        "variables gates need",
    ]);
    expect(envConfigWarnings(config('{"denylist":["SECRET_TOKEN"]}'))).toHaveLength(1);
    for (const settings of ['{"allowlist":[]}', '{"allowlist":["HOME_DIR"]}', '{"overrides":{"A":"1"}}']) {
      expect(envConfigWarnings(config(settings))).toEqual([]);
    }
  });

  const failures: Array<[string, string | undefined, string]> = [
    ["get", undefined, "env check requires params"],
    ["get", '"HOME_DIR"', "env params must be an object"],
    ["get", "{}", "missing env key"],
    ["get", '{"key":1}', "env key must be a string"],
    ["get", `{"key":"${"K".repeat(256)}"}`, "env key exceeds limit"],
    ["get", '{"key":"BIG"}', "env value exceeds limit"],
    ["set", '{"key":"HOME_DIR"}', "unsupported env check"],
  ];
  for (const [check, params, message] of failures) {
    it(`fails with "${message}"`, async () => {
      await expect(env.query(query("env", check, params), logical(1n))).rejects.toThrow(
        `evidence provider error: ${message}`,
      );
    });
  }
});
