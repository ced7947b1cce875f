import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JsonValue } from "../../src/json/value.js";
import { canonicalJson } from "../../src/json/write.js";
import { harness, logical, nextRequest, runConfig } from "../support/scenarios.js";
import { CLI_COMMAND, runCli } from "../support/server-process.js";

/*
 * Progress bars of `runpack export`, `verify` and `report`: drawn on a terminal (a pseudo-terminal from util-linux
 * `script`), and nothing at all when standard output is a pipe, where the output stays exactly what it was.
 */

let work: string;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "dg-progress-"));
  const { plane, store } = harness();
  await plane.start(runConfig(), logical(1), false);
  await plane.next(nextRequest("t-1", 10));
  const state = await store.load(runConfig());
  writeFileSync(join(work, "spec.json"), canonicalJson(plane.spec as unknown as JsonValue));
  writeFileSync(join(work, "state.json"), canonicalJson(state as unknown as JsonValue));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const exportArgs = (out: string) => [
  "runpack",
  "export",
  ...["--spec", join(work, "spec.json"), "--state", join(work, "state.json"), "--output-dir", join(work, out)],
  ...["--generated-at-unix-ms", "1"],
];
const verifyArgs = (out: string) => ["runpack", "verify", "--manifest", join(work, out, "runpack.json")];
const reportArgs = (out: string) => ["runpack", "report", join(work, out), "--html", join(work, `${out}.html`)];

/** Runs the CLI with a pseudo-terminal as its standard output and error; returns what the terminal showed. */
async function onTerminal(args: string[]): Promise<string> {
  const command = [CLI_COMMAND.command, ...CLI_COMMAND.args, ...args].map((arg) => `'${arg}'`).join(" ");
  const { stdout } = await promisify(execFile)("script", ["-qec", command, "/dev/null"]);
  return stdout;
}

describe("runpack progress", () => {
  it("prints exactly the command's output, and nothing on standard error, when output is not a terminal", async () => {
    const exported = await runCli(exportArgs("piped"));
    const [verified, reported] = await Promise.all([runCli(verifyArgs("piped")), runCli(reportArgs("piped"))]);
    expect(exported).toEqual({
      code: 0,
      stdout: `Runpack manifest written to ${join(work, "piped", "runpack.json")}\n`,
      stderr: "",
    });
    expect(verified).toEqual({ code: 0, stdout: '{"checked_files":7,"errors":[],"status":"pass"}\n', stderr: "" });
    expect(reported).toEqual({
      code: 0,
      stdout: `Runpack report written to ${join(work, "piped.html")} (verification: pass)\n`,
      stderr: "",
    });
  });

  it("draws a progress bar on a terminal, then the same output", async () => {
    const exported = await onTerminal(exportArgs("tty"));
    const [verified, reported] = await Promise.all([onTerminal(verifyArgs("tty")), onTerminal(reportArgs("tty"))]);
    expect(exported).toMatch(/Writing runpack \[[█░]{40}\] 14\/14/);
    expect(exported).toContain(`Runpack manifest written to ${join(work, "tty", "runpack.json")}`);
    for (const output of [verified, reported]) expect(output).toMatch(/Verifying runpack \[[█░]{40}\] 7\/7/);
    expect(verified).toContain('{"checked_files":7,"errors":[],"status":"pass"}');
    expect(reported).toContain(`Runpack report written to ${join(work, "tty.html")} (verification: pass)`);
  });
});
