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
      "decision-gate: INFO: security posture: transport=http, auth=local_only, allow_default_namespace=false, " +
        "dev_permissive=true, registry.allow_local_only=true, registry.require_signing=false, validation.strict=true",
      "decision-gate: INFO: running in local-only mode; configure server.auth to enable bearer_token or mtls for network exposure",
      "decision-gate: INFO: schema_registry.acl.allow_local_only=true; local-only callers bypass principal mapping " +
        "for registry access (local-only mode)",
      "decision-gate: INFO: dev-permissive enabled via dev.permissive=true; asserted evidence allowed for " +
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
      "decision-gate: WARNING: schema_registry.acl.allow_local_only=true; local-only callers bypass principal " +
        "mapping for registry access",
      "decision-gate: WARNING: validation.strict=false; strict comparator/type validation disabled (allow_permissive must be true)",
      "decision-gate: WARNING: dev-permissive enabled via server.mode=dev_permissive (legacy); asserted evidence " +
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
    expect(withTtl(7, false)).toMatch(/^decision-gate: INFO: schema_registry/);
  });

  it("are written by a real server to standard error", async () => {
    const server = await startServerProcess(QUICKSTART);
    try {
      expect(server.stderr()).toContain("decision-gate: INFO: dev-permissive enabled via dev.permissive=true;");
      expect(server.stderr()).toContain("decision-gate: INFO: running in local-only mode;");
    } finally {
      await server.stop();
    }
  });
});
