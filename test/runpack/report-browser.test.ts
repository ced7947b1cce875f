import { createPrivateKey, createPublicKey } from "node:crypto";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMcpClient } from "../../src/cli/client.js";
import { parseJson } from "../../src/json/parse.js";
import type { JsonObject } from "../../src/json/value.js";
import { signRunpackManifest } from "../support/runpacks.js";
import { runCli, type ServerProcess, startServerProcess } from "../support/server-process.js";

/*
 * The HTML runpack report, end to end: a real server records a run (hold, advance, complete, with action receipts),
 * exports it, the manifest is signed with a real Ed25519 key, `decision-gate runpack report` renders it, and
 * headless Chromium shows the page. The screenshot is kept in docs/.
 */

const CHROMIUM = process.env.DECISION_GATE_CHROMIUM ?? "/usr/bin/chromium";
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env.CI)
  throw new Error(`the browser test needs Chromium at ${CHROMIUM} (.ci/run installs it)`);
const SCREENSHOT = new URL("../../docs/runpack-report.png", import.meta.url);

const HOSTILE_SOURCE = `<img src=x onerror="document.title='pwned'">`;
const PAYLOAD_SECRET = "submission-secret-7373";

const CONFIG = `
[server]
transport = "http"
bind = "127.0.0.1:0"

[runtime_actions]
include_in_runpack = true

[[providers]]
name = "time"
type = "builtin"

[[providers]]
name = "env"
type = "builtin"
config = { overrides = { APPROVAL = "yes", FREEZE = "off" } }
`;

const condition = (id: string, query: object, comparator: string, expected: unknown) => ({
  condition_id: id,
  query,
  comparator,
  expected,
  policy_tags: [],
});

const SPEC = {
  scenario_id: "release-audit",
  namespace_id: 2,
  spec_version: "v1",
  default_tenant_id: null,
  policies: [],
  schemas: [],
  conditions: [
    condition("after_window", { provider_id: "time", check_id: "after", params: { timestamp: 5 } }, "equals", true),
    condition("approved", { provider_id: "env", check_id: "get", params: { key: "APPROVAL" } }, "equals", "yes"),
    condition("hotfix", { provider_id: "env", check_id: "get", params: { key: "HOTFIX" } }, "exists", null),
    condition("freeze", { provider_id: "env", check_id: "get", params: { key: "FREEZE" } }, "equals", "on"),
  ],
  stages: [
    {
      stage_id: "checks",
      entry_packets: [],
      gates: [
        {
          gate_id: "release_ready",
          requirement: {
            And: [
              { Condition: "after_window" },
              { Or: [{ Condition: "approved" }, { Condition: "hotfix" }] },
              { Not: { Condition: "freeze" } },
            ],
          },
        },
        {
          gate_id: "quorum",
          requirement: {
            RequireGroup: {
              min: 2,
              reqs: [{ Condition: "after_window" }, { Condition: "approved" }, { Condition: "hotfix" }],
            },
          },
        },
      ],
      advance_to: { kind: "linear" },
      timeout: null,
      on_timeout: "fail",
    },
    {
      stage_id: "ship",
      entry_packets: [],
      gates: [],
      advance_to: { kind: "terminal" },
      timeout: null,
      on_timeout: "fail",
    },
  ],
};

/** A fixed key, so the page (and the screenshot kept in docs/) comes out the same on every run. */
const FIXED_SIGNING_KEY = (() => {
  const seed = Buffer.alloc(32, 0x5a);
  const privateKey = createPrivateKey({
    key: Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]),
    format: "der",
    type: "pkcs8",
  });
  return { privateKey, publicKey: createPublicKey(privateKey) };
})();

const logical = (value: number) => ({ kind: "logical", value: BigInt(value) });
const RUN = { run_id: "run-7", tenant_id: 1n, namespace_id: 2n };

let server: ServerProcess;
let work: string;
let browser: Browser;
let runpackDir: string;
let publicKeyPath: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "dg-report-"));
  runpackDir = join(work, "runpack");
  server = await startServerProcess(CONFIG);
  await recordRun(server.url);
  const { publicKey, privateKey } = FIXED_SIGNING_KEY;
  await signRunpackManifest(runpackDir, privateKey);
  publicKeyPath = join(work, "signer.pub.pem");
  writeFileSync(publicKeyPath, publicKey.export({ format: "pem", type: "spki" }));
  if (haveChromium) {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
  }
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

async function recordRun(url: string): Promise<void> {
  const client = await createMcpClient({ transport: "http", endpoint: `${url}/rpc` });
  try {
    await client.callTool("scenario_define", { spec: parseJson(JSON.stringify(SPEC)) });
    await client.callTool("scenario_start", {
      scenario_id: SPEC.scenario_id,
      run_config: { ...RUN, scenario_id: SPEC.scenario_id, dispatch_targets: [], policy_tags: [] },
      started_at: logical(1),
      issue_entry_packets: true,
    });
    await client.callTool("scenario_submit", {
      scenario_id: SPEC.scenario_id,
      request: {
        ...RUN,
        submission_id: "change-request",
        payload: { kind: "json", value: { note: PAYLOAD_SECRET } },
        content_type: "application/json",
        submitted_at: logical(2),
      },
    });
    await client.callTool("scenario_trigger", {
      scenario_id: SPEC.scenario_id,
      trigger: {
        ...RUN,
        trigger_id: "early",
        kind: "external_event",
        time: logical(3),
        source_id: HOSTILE_SOURCE,
        payload: null,
        correlation_id: null,
      },
    });
    for (const [trigger, time] of [
      ["on-time", 10],
      ["ship-it", 11],
    ] as const) {
      await client.callTool("scenario_next", {
        scenario_id: SPEC.scenario_id,
        request: { ...RUN, trigger_id: trigger, agent_id: "release-bot", time: logical(time) },
      });
    }
    await client.callTool("runpack_export", {
      scenario_id: SPEC.scenario_id,
      ...RUN,
      output_dir: runpackDir,
      generated_at: logical(20),
      include_verification: true,
    });
  } finally {
    await client.close();
  }
}

async function report(dir: string, htmlPath: string) {
  return runCli(["runpack", "report", dir, "--html", htmlPath, "--verify-key", publicKeyPath]);
}

/** Opens a report, recording every request the page makes besides its own file. */
async function open(htmlPath: string): Promise<{ page: Page; requests: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const requests: string[] = [];
  const own = pathToFileURL(htmlPath).href;
  page.on("request", (request) => {
    if (request.url() !== own) requests.push(request.url());
  });
  await page.goto(own);
  return { page, requests };
}

const conditionIn = (page: Page, entry: number, gate: string, id: string) =>
  page.locator(`#entry-${entry} [data-gate="${gate}"] [data-condition="${id}"]`).first();

describe.skipIf(!haveChromium)("runpack report in headless Chromium", () => {
  it("shows the verification first, then the timeline and each gate's tree, and is kept as a screenshot", async () => {
    const htmlPath = join(work, "report.html");
    const cli = await report(runpackDir, htmlPath);
    expect(cli.stderr).toBe("");
    expect(cli.code).toBe(0);
    expect(cli.stdout).toContain("(verification: pass)");
    const html = readFileSync(htmlPath, "utf8");
    expect(html).not.toContain(PAYLOAD_SECRET);

    const { page, requests } = await open(htmlPath);
    const firstSection = page.locator("main > section").first();
    expect(await firstSection.getAttribute("id")).toBe("verification");
    expect(await firstSection.getAttribute("data-status")).toBe("pass");
    expect(await page.locator(".verdict-word").textContent()).toBe("PASS");
    const manifest = parseJson(readFileSync(join(runpackDir, "manifest.json"), "utf8")) as JsonObject;
    const rootHash = (manifest.integrity as JsonObject).root_hash as JsonObject;
    expect(await page.locator("#root-hash").textContent()).toBe(`sha256:${rootHash.value}`);
    expect(await page.locator("#signature").getAttribute("data-state")).toBe("valid");
    expect(await page.locator("#signature").textContent()).toContain("required key");

    const rows = page.locator("#timeline tbody tr");
    expect(await rows.count()).toBe(4);
    const cells = async (row: number) => (await rows.nth(row).locator("td").allInnerTexts()).map((text) => text.trim());
    expect((await cells(0))[4]).toMatch(/^start/);
    expect((await cells(1))[2]).toContain(HOSTILE_SOURCE);
    expect((await cells(1))[4]).toMatch(/^hold unmet gates: release_ready, quorum/);
    expect((await cells(1))[5]).toMatch(/^isolate_and_continue \(warn\)/);
    expect((await cells(2))[4]).toMatch(/^advance checks → ship/);
    expect((await cells(3))[5]).toMatch(/^continue \(allow\)/);

    // Trigger "early" (entry 2): the window has not opened, so the gate holds although approval is in.
    const gate = page.locator('#entry-2 [data-gate="release_ready"]');
    expect(await gate.getAttribute("data-status")).toBe("False");
    expect(await conditionIn(page, 2, "release_ready", "after_window").getAttribute("data-status")).toBe("False");
    const approved = conditionIn(page, 2, "release_ready", "approved");
    expect(await approved.getAttribute("data-status")).toBe("True");
    expect(await approved.locator(".comparator").textContent()).toBe("equals");
    expect(await approved.locator(".expected").textContent()).toBe('"yes"');
    expect(await approved.locator("dl.evidence").textContent()).toMatch(/hash\s*sha256:[0-9a-f]{64}/);
    // "not freeze" is True because freeze is False; "at least 2 of" holds only once the window opens.
    const notFreeze = page.locator('#entry-2 [data-gate="release_ready"] .group').filter({ hasText: "not" }).last();
    expect(await notFreeze.locator("> .tri").textContent()).toBe("True");
    expect(await page.locator('#entry-2 [data-gate="quorum"]').getAttribute("data-status")).toBe("False");
    expect(await page.locator('#entry-3 [data-gate="quorum"]').getAttribute("data-status")).toBe("True");
    expect(await page.locator('#entry-3 [data-gate="release_ready"]').getAttribute("data-status")).toBe("True");

    expect(await page.locator("img, script").count()).toBe(0);
    expect(await page.title()).toBe("Runpack report: release-audit / run-7");
    expect(requests).toEqual([]);
    // Off-screen parts render lazily (content-visibility); settle two frames so the screenshot is the same each run.
    await page.evaluate("new Promise((settled) => requestAnimationFrame(() => requestAnimationFrame(settled)))");
    writeFileSync(SCREENSHOT, await page.screenshot({ fullPage: true }));
    await page.close();
  });

  it("leads with FAIL and the problems when an artifact was altered, and still shows the run", async () => {
    const tampered = join(work, "tampered");
    cpSync(runpackDir, tampered, { recursive: true });
    const decisions = join(tampered, "artifacts/decisions.json");
    writeFileSync(
      decisions,
      readFileSync(decisions, "utf8").replace('"kind":"hold"', '"kind":"fail","reason":"x","_":"hold"'),
    );
    const htmlPath = join(work, "tampered.html");
    const cli = await report(tampered, htmlPath);
    expect(cli.code).toBe(1);
    expect(cli.stdout).toContain("(verification: fail)");

    const { page } = await open(htmlPath);
    expect(await page.locator("#verification").getAttribute("data-status")).toBe("fail");
    expect(await page.locator(".verdict-word").textContent()).toBe("FAIL");
    const problems = await page.locator("#verification .errors li").allTextContents();
    expect(problems).toContain("hash mismatch for artifacts/decisions.json");
    expect(await page.locator("#verification .warning").count()).toBe(1);
    expect(await page.locator("#timeline tbody tr").count()).toBe(4);
    await page.close();
  });
});
