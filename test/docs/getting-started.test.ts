import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { presetsDirectory } from "../../src/config/presets.js";
import { runCli, startServerProcess } from "../support/server-process.js";

const GUIDE = readFileSync(new URL("../../docs/GETTING_STARTED.md", import.meta.url), "utf8");

/** The JSON files the guide asks the reader to create, by name (`<!-- file: name -->` before a json block). */
function guideFiles(): Map<string, string> {
  const files = new Map<string, string>();
  for (const match of GUIDE.matchAll(/<!-- file: (\S+) -->\n```json\n([\s\S]*?)```/g)) {
    files.set(match[1] as string, match[2] as string);
  }
  return files;
}

/** The arguments the guide passes inline with `--tool <tool> --json '…'`. */
function inlineArguments(tool: string): string {
  const match = new RegExp(`--tool ${tool} --json \\\\\\n\\s*'([\\s\\S]*?)'`).exec(GUIDE);
  if (match === null) throw new Error(`the guide has no inline arguments for ${tool}`);
  return match[1] as string;
}

/** The quickstart preset the guide runs, on a free port instead of 4000. */
function quickstartConfig(): string {
  return readFileSync(join(presetsDirectory(), "quickstart-dev.toml"), "utf8").replace(
    'bind = "127.0.0.1:4000"',
    'bind = "127.0.0.1:0"',
  );
}

describe("docs/GETTING_STARTED.md", () => {
  it("walks from a held release to a completed, verified run", { timeout: 60_000 }, async () => {
    const files = guideFiles();
    expect([...files.keys()]).toEqual(["scenario.json", "start.json", "next.json"]);
    const server = await startServerProcess(quickstartConfig(), [], (dir) => mkdirSync(join(dir, "evidence")));
    const { dir } = server;
    try {
      for (const [name, text] of files) writeFileSync(join(dir, name), text);
      const call = async (tool: string, input: string[]) => {
        const result = await runCli(
          ["mcp", "tools", "call", "--endpoint", `${server.url}/rpc`, "--tool", tool, ...input],
          { cwd: dir },
        );
        expect(result.stderr).toBe("");
        expect(result.code).toBe(0);
        return JSON.parse(result.stdout);
      };
      const next = async (trigger: string) => {
        writeFileSync(join(dir, "next.json"), (files.get("next.json") as string).replace("ci-1", trigger));
        return call("scenario_next", ["--input", "next.json"]);
      };
      const report = (text: string) => writeFileSync(join(dir, "evidence", "report.json"), text);

      expect((await call("scenario_define", ["--input", "scenario.json"])).scenario_id).toBe("release");
      expect((await call("scenario_start", ["--input", "start.json"])).current_stage_id).toBe("verify");

      report('{"failed": 2, "passed": 118}');
      const held = await next("ci-1");
      expect(held.decision.outcome).toMatchObject({ kind: "hold", summary: { unmet_gates: ["tests"] } });
      expect(held.feedback.gate_evaluations[0].trace).toEqual([{ condition_id: "tests_green", status: "False" }]);

      report('{"failed": 0, "passed": 120}');
      expect((await next("ci-2")).decision.outcome).toMatchObject({ kind: "advance", to_stage: "ship" });
      const completed = await next("ci-3");
      expect(completed.status).toBe("completed");

      await call("runpack_export", ["--json", inlineArguments("runpack_export")]);
      const verified = await runCli(
        ["runpack", "verify", "--manifest", "release-42/manifest.json", "--format", "markdown"],
        { cwd: dir },
      );
      expect(verified.code).toBe(0);
      expect(verified.stdout).toContain("Status: pass");
    } finally {
      await server.stop();
    }
  });
});
