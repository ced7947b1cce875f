import { describe, expect, it } from "vitest";
import { parseConfigText } from "../../src/config/load.js";
import { startupNotices } from "../../src/server/startup-notices.js";
import { startServerProcess } from "../support/server-process.js";

/* The security-posture lines a server writes to standard error when it starts (interface §8.1). */

const configOf = (toml: string) => parseConfigText(toml).config;
const NOW = Date.UTC(2026, 10, 22);
const DAY = 86_400_000;
const clock = { configModifiedMs: NOW - 10 * DAY, nowMs: NOW };

const QUICKSTART = `
[server]
transport = "http"
bind = "127.0.0.1:0"
[schema_registry.acl]
allow_local_only = true
[dev]
permissive = true
`;

describe("startup notices", () => {
  it("names every relaxation of a local-only quickstart as INFO", () => {
    expect(startupNotices(configOf(QUICKSTART), clock)).toEqual([
      "decision-gate-mcp: INFO: security posture: transport=http, auth=local_only, allow_default_namespace=false, " +
        "dev_permissive=true, registry.allow_local_only=true, registry.require_signing=false, validation.strict=true",
      "decision-gate-mcp: INFO: running in local-only mode; configure server.auth to enable bearer_token or mtls for network exposure",
      "decision-gate-mcp: INFO: schema_registry.acl.allow_local_only=true; local-only callers bypass principal mapping " +
        "for registry access (local-only mode)",
      "decision-gate-mcp: INFO: dev-permissive enabled via dev.permissive=true; asserted evidence allowed for " +
        "non-exempt providers only; namespace defaults remain strict (local-only mode)",
    ]);
  });

  it("warns about the same relaxations on a server with real authentication", () => {
    const lines = startupNotices(
      configOf(`
[server]
transport = "http"
bind = "127.0.0.1:0"
mode = "dev_permissive"
[server.auth]
mode = "bearer_token"
bearer_tokens = ["t0ken"]
[schema_registry.acl]
allow_local_only = true
[validation]
strict = false
allow_permissive = true
`),
      clock,
    );
    expect(lines.slice(1)).toEqual([
      "decision-gate-mcp: WARNING: schema_registry.acl.allow_local_only=true; local-only callers bypass principal " +
        "mapping for registry access",
      "decision-gate-mcp: WARNING: validation.strict=false; strict comparator/type validation disabled (allow_permissive must be true)",
      "decision-gate-mcp: WARNING: dev-permissive enabled via server.mode=dev_permissive (legacy); asserted evidence " +
        "allowed for non-exempt providers only; namespace defaults remain strict",
    ]);
  });

  it("says when the configuration is older than the dev-permissive TTL, and is silent with permissive_warn off", () => {
    const withTtl = (days: number, warn = true) =>
      startupNotices(configOf(`${QUICKSTART}permissive_ttl_days = ${days}\npermissive_warn = ${warn}\n`), clock).at(-1);
    expect(withTtl(7)).toContain(
      "namespace defaults remain strict (TTL exceeded: 10d elapsed >= 7d) (local-only mode)",
    );
    expect(withTtl(11)).toMatch(/remain strict \(local-only mode\)$/);
    expect(withTtl(7, false)).toMatch(/^decision-gate-mcp: INFO: schema_registry/);
  });

  it("warn when schema signatures would only be checked for presence", () => {
    const signing = (keys: string) =>
      startupNotices(configOf(`[schema_registry.acl]\nrequire_signing = true\n${keys}`), clock).filter((line) =>
        line.includes("signing_keys"),
      );
    expect(signing("")).toEqual([
      "decision-gate-mcp: WARNING: schema_registry.acl.require_signing is on without signing_keys: schema signatures " +
        "are checked for presence only, not verified; configure schema_registry.acl.signing_keys to verify them",
    ]);
    expect(signing('signing_keys = ["keys/schemas.pub"]\n')).toEqual([]);
  });

  it("warn about each http provider value outside the advised range, naming the provider", () => {
    const lines = startupNotices(
      configOf(`
[[providers]]
name = "time"
type = "builtin"
[[providers]]
name = "http"
type = "builtin"
config = { allow_http = true, allowed_hosts = ["127.0.0.1"], timeout_ms = 25, max_response_bytes = 0 }
`),
      clock,
    );
    expect(lines.filter((line) => line.includes("providers["))).toEqual([
      "decision-gate-mcp: WARNING: providers[1] (http): timeout_ms = 25 is outside the advised 100..=60000 " +
        'milliseconds; a target slower than that fails with "http request failed"',
      "decision-gate-mcp: WARNING: providers[1] (http): max_response_bytes = 0 is outside the advised 1..=16777216 " +
        "bytes; body_hash refuses every non-empty body",
    ]);
    const advised = '[[providers]]\nname = "http"\ntype = "builtin"\nconfig = { timeout_ms = 100 }\n';
    expect(startupNotices(configOf(advised), clock).filter((line) => line.includes("providers["))).toEqual([]);
  });

  it("are written by a real server to standard error", async () => {
    const server = await startServerProcess(QUICKSTART);
    try {
      expect(server.stderr()).toContain("decision-gate-mcp: INFO: dev-permissive enabled via dev.permissive=true;");
      expect(server.stderr()).toContain("decision-gate-mcp: INFO: running in local-only mode;");
    } finally {
      await server.stop();
    }
  });

  it("let a real server start with the reference's short http timeout, warning about it", async () => {
    const server = await startServerProcess(`${QUICKSTART}
[[providers]]
name = "http"
type = "builtin"
config = { allow_http = true, allowed_hosts = ["127.0.0.1"], timeout_ms = 25 }
`);
    try {
      expect(server.stderr()).toContain(
        "decision-gate-mcp: WARNING: providers[0] (http): timeout_ms = 25 is outside the advised 100..=60000 milliseconds",
      );
    } finally {
      await server.stop();
    }
  });
});
