import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { createServerLogger } from "../../src/server/log.js";
import { runCli, startServerProcess } from "../support/server-process.js";

/** Operational log lines (pino's `msg`), as opposed to audit lines (`event`). */
function logLines(stderr: string): Record<string, unknown>[] {
  return stderr
    .split("\n")
    .filter((line) => line.startsWith("{") && line.includes('"msg"'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

function captured(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = "";
  stream.on("data", (chunk) => {
    text += chunk.toString();
  });
  return { stream, text: () => text };
}

describe("operational log", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  function stdioConfig(config = ""): string {
    const dir = mkdtempSync(join(tmpdir(), "dg-log-"));
    dirs.push(dir);
    writeFileSync(join(dir, "decision-gate.toml"), `[server]\ntransport = "stdio"\n${config}`);
    return join(dir, "decision-gate.toml");
  }

  const toolsList = `${JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" })}\n`;

  it(
    "writes a JSON line per request at debug (from the configuration), without credentials",
    { timeout: 30_000 },
    async () => {
      const server = await startServerProcess(
        '[server]\ntransport = "http"\nbind = "127.0.0.1:0"\nauth = { mode = "bearer_token", bearer_tokens = ["s3cret-token-value"] }\n[server.log]\nlevel = "debug"\n',
      );
      try {
        const response = await fetch(`${server.url}/rpc`, {
          method: "POST",
          headers: { authorization: "Bearer s3cret-token-value", "content-type": "application/json" },
          body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
        });
        expect(response.status).toBe(200);
        await expect.poll(() => logLines(server.stderr()).length).toBeGreaterThan(0);
        const line = logLines(server.stderr()).find((entry) => entry.msg === "request handled");
        expect(line).toMatchObject({ level: 20, service: "decision-gate", transport: "http", method: "tools/list" });
        expect(typeof line?.server_correlation_id).toBe("string");
        expect(server.stderr()).not.toContain("s3cret-token-value");
      } finally {
        await server.stop();
      }
    },
  );

  it("takes its level from DECISION_GATE_LOG_LEVEL over the configuration", { timeout: 30_000 }, async () => {
    const quiet = await runCli(["serve", "--config", stdioConfig()], { input: toolsList });
    expect(quiet.code).toBe(0);
    expect(logLines(quiet.stderr)).toEqual([]);
    const verbose = await runCli(["serve", "--config", stdioConfig('[server.log]\nlevel = "error"\n')], {
      input: toolsList,
      env: { DECISION_GATE_LOG_LEVEL: "debug" },
    });
    expect(verbose.code).toBe(0);
    expect(logLines(verbose.stderr)).toEqual([
      expect.objectContaining({ msg: "request handled", transport: "stdio", method: "tools/list" }),
    ]);
  });

  it("refuses an unknown level, naming the variable", { timeout: 30_000 }, async () => {
    const result = await runCli(["serve", "--config", stdioConfig()], {
      input: toolsList,
      env: { DECISION_GATE_LOG_LEVEL: "loud" },
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("DECISION_GATE_LOG_LEVEL: expected one of fatal, error, warn, info, debug");
    expect(result.stderr).toContain('"loud"');
  });

  it("rejects an unknown level in the configuration file", { timeout: 30_000 }, async () => {
    const result = await runCli(["serve", "--config", stdioConfig('[server.log]\nlevel = "loud"\n')], {
      input: toolsList,
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("server.log.level");
  });

  it("writes human-readable lines when pretty and filters by level", () => {
    const pretty = captured();
    const prettyLog = createServerLogger({ level: "warn", format: "pretty" }, pretty.stream);
    prettyLog.info("hidden below warn");
    prettyLog.warn({ tool: "scenario_next" }, "store slow");
    expect(pretty.text()).toContain("WARN");
    expect(pretty.text()).toContain("store slow");
    expect(pretty.text()).not.toContain("hidden below warn");
    expect(pretty.text().trimStart().startsWith("{")).toBe(false);

    const json = captured();
    createServerLogger({ level: "info", format: "auto" }, json.stream).error({ err: new Error("boom") }, "failed");
    const [line] = logLines(json.text());
    expect(line).toMatchObject({ level: 50, msg: "failed", err: { message: "boom", type: "Error" } });
    expect(String((line?.err as { stack: string }).stack)).toContain("boom");
  });
});
