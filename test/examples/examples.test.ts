import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const TSX = fileURLToPath(new URL("../../node_modules/tsx/dist/esm/index.mjs", import.meta.url));
const SCRIPTS = (JSON.parse(readFileSync(`${REPO}package.json`, "utf8")) as { scripts: Record<string, string> })
  .scripts;

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs an `npm run <name>` script as a child process from the repository root. Every example script is
 * `tsx <file> [args]`; it is run as `node --import tsx <file> [args]` (what the tsx binary does) to skip npm's
 * start-up, with a hard timeout.
 */
function runScript(name: string, timeoutMs = 50_000): Promise<Finished> {
  const script = SCRIPTS[name];
  if (script === undefined) throw new Error(`package.json has no script ${name}`);
  const [tool, ...args] = script.split(" ");
  expect(tool).toBe("tsx");
  const child = spawn(process.execPath, ["--import", TSX, ...args], {
    cwd: REPO,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, DG_EXAMPLE_DEBUG: "0" },
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => {
    stdout += chunk.toString();
  });
  child.stderr.on("data", (chunk) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${name} timed out after ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, timeoutMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The output, for assertion messages. */
const shown = (run: Finished) => `exit ${run.code}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`;

describe.concurrent("examples (run as child processes)", { timeout: 60_000 }, () => {
  it("ci-release-gate: a green report allows the release and exits 0", async () => {
    const run = await runScript("example:ci-gate");
    expect(run.code, shown(run)).toBe(0);
    expect(run.stdout).toContain("decision: complete");
    expect(run.stdout).toContain("gate no_failed_tests: True");
    expect(run.stdout).toContain("RELEASE ALLOWED");
    expect(run.stdout).not.toContain("RELEASE HELD");
  });

  it("ci-release-gate: a report with failures holds the release and exits 1", async () => {
    const run = await runScript("example:ci-gate:failing");
    expect(run.code, shown(run)).toBe(1);
    expect(run.stdout).toContain("report-failing.json");
    expect(run.stdout).toContain("decision: hold");
    expect(run.stdout).toContain("gate no_failed_tests: False");
    expect(run.stdout).toContain("unmet gates: no_failed_tests");
    expect(run.stdout).toContain("RELEASE HELD");
    expect(run.stdout).not.toContain("RELEASE ALLOWED");
  });

  it("agent-loop: the SDK client over stdio loops scenario_next until the run completes", async () => {
    const run = await runScript("example:agent-loop");
    expect(run.code, shown(run)).toBe(0);
    expect(run.stdout).toMatch(/^tools: .*\bscenario_define\b.*\bscenario_next\b/m);
    const decisions = run.stdout.split("\n").filter((line) => /^step \d+: decision /.test(line));
    expect(decisions).toEqual([
      "step 1: decision hold at stage plan (unmet: plan_gate)",
      "step 2: decision advance plan -> implement",
      "step 3: decision hold at stage implement (unmet: tests_gate)",
      "step 4: decision advance implement -> review",
      "step 5: decision hold at stage review (unmet: review_gate)",
      "step 6: decision complete at stage review",
    ]);
    expect(run.stdout).toContain("run completed after 6 steps (status: completed)");
  });

  it("signed-evidence: a valid signature passes the gate; tampered or untrusted signatures hold it", async () => {
    const run = await runScript("example:signed-evidence");
    expect(run.code, shown(run)).toBe(0);
    expect(run.stdout).toMatch(/^trusted key keys\/ci\.pub: [0-9a-f]{64}$/m);
    expect(run.stdout).toContain("ci_signed: decision complete -> RELEASE ALLOWED (signature verified)");
    expect(run.stdout).toContain(
      "ci_tampered: decision hold -> RELEASE HELD (error: evidence provider error: signature verification failed)",
    );
    expect(run.stdout).toContain(
      "ci_rogue: decision hold -> RELEASE HELD (error: evidence provider error: signature verification failed)",
    );
    expect(run.stdout).toContain("all outcomes as expected");
    expect(run.stdout).not.toContain("UNEXPECTED");
  });
});
