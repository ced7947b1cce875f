import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ControlPlane } from "../../src/core/run/control-plane.js";
import { RunConfig, TriggerEvent } from "../../src/core/run/schema.js";
import { buildRunpack } from "../../src/core/runpack/builder.js";
import { ScenarioSpec } from "../../src/core/spec/schema.js";
import { decode } from "../../src/core/wire/common.js";
import { parseJson } from "../../src/json/parse.js";
import { FilesystemRunpack, verifyRunpackDirectory } from "../../src/runpack/filesystem.js";
import { MemoryRunStateStore } from "../../src/store/memory/run-state.js";
import { readSharedJson, sharedPath } from "../support/shared.js";
import { TimeEvidence } from "../support/time-evidence.js";

const GOLDEN = "fixtures/reference/runpacks/golden";
const temporary: string[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "dg-runpack-"));
  temporary.push(dir);
  return dir;
}

afterEach(() => {
  for (const dir of temporary.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function filesUnder(root: string): string[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(root, join(entry.parentPath, entry.name)))
    .sort();
}

/** Replays the recorded flow of a golden runpack (inputs from its README). */
async function replay(fixture: string, runId: string, issueEntryPackets: boolean) {
  const spec = decode(ScenarioSpec, readSharedJson(`${GOLDEN}/${fixture}/artifacts/scenario_spec.json`), "spec");
  const store = new MemoryRunStateStore();
  // Raw values are recorded whatever the disclosure policy says, as by the reference (no recording option given).
  const plane = new ControlPlane(spec, { store, evidence: new TimeEvidence() });
  const runConfig = decode(
    RunConfig,
    parseJson(
      `{"tenant_id":1,"namespace_id":1,"run_id":"${runId}","scenario_id":"${spec.scenario_id}","dispatch_targets":[],"policy_tags":[]}`,
    ),
    "run_config",
  );
  await plane.start(runConfig, { kind: "logical", value: 1n }, issueEntryPackets);
  const trigger = decode(
    TriggerEvent,
    parseJson(
      `{"trigger_id":"trigger-1","tenant_id":1,"namespace_id":1,"run_id":"${runId}","kind":"external_event","time":{"kind":"logical","value":2},"source_id":"system-tests","payload":null,"correlation_id":null}`,
    ),
    "trigger",
  );
  const { result } = await plane.trigger(trigger);
  expect(result.decision.outcome.kind).toBe("complete");
  expect(result.status).toBe("completed");

  const state = await store.load(runConfig);
  if (state === undefined) throw new Error("run vanished");
  return { spec, state };
}

/** Replays a golden runpack's flow and exports it. */
async function reproduce(fixture: string, runId: string, issueEntryPackets: boolean): Promise<string> {
  const { spec, state } = await replay(fixture, runId, issueEntryPackets);
  const out = tempDir();
  const runpack = new FilesystemRunpack(out);
  const { report } = await buildRunpack(spec, state, runpack, {
    generatedAt: { kind: "logical", value: 10n },
    security: { dev_permissive: false, namespace_authority: "dg_registry" },
    verification: { reader: runpack },
  });
  expect(report).toEqual({ status: "pass", checked_files: 7n, errors: [] });
  return out;
}

describe("golden runpacks are reproduced byte for byte", () => {
  for (const [fixture, runId, issue] of [
    ["golden_time_after_pass", "run-1", false],
    ["golden_visibility_packet", "run-2", true],
  ] as const) {
    it(fixture, async () => {
      const produced = await reproduce(fixture, runId, issue);
      const expectedDir = sharedPath(`${GOLDEN}/${fixture}`);
      expect(filesUnder(produced)).toEqual(filesUnder(expectedDir));
      for (const file of filesUnder(expectedDir)) {
        expect(readFileSync(join(produced, file)).toString("utf8"), file).toBe(
          readFileSync(join(expectedDir, file)).toString("utf8"),
        );
      }
      expect(await verifyRunpackDirectory(produced)).toEqual({ status: "pass", checked_files: 8n, errors: [] });
    });
  }
});

describe("runpack export limits", () => {
  it("refuses an artifact larger than the verifier reads, and writes nothing", async () => {
    const { spec, state } = await replay("golden_time_after_pass", "run-1", false);
    const [first] = state.triggers;
    if (first === undefined) throw new Error("no trigger recorded");
    first.event.payload = { kind: "json", value: "x".repeat(16 * 1024 * 1024) };
    const out = tempDir();
    await expect(
      buildRunpack(spec, state, new FilesystemRunpack(out), { generatedAt: { kind: "logical", value: 10n } }),
    ).rejects.toThrow(/^artifact too large: artifacts\/triggers\.json \(\d+ > 16777216\)/);
    expect(filesUnder(out)).toEqual([]);
  });
});

describe("runpack verification", () => {
  function copyOfBackcompat(): string {
    const dir = tempDir();
    cpSync(sharedPath("fixtures/reference/runpacks/backcompat/v1"), dir, { recursive: true });
    return dir;
  }

  function editJson(path: string, edit: (text: string) => string): void {
    writeFileSync(path, edit(readFileSync(path, "utf8")));
  }

  it("accepts backcompat/v1 as it is", async () => {
    const report = await verifyRunpackDirectory(sharedPath("fixtures/reference/runpacks/backcompat/v1"));
    expect(report).toEqual({ status: "pass", checked_files: 8n, errors: [] });
  });

  it("names a tampered artifact", async () => {
    const dir = copyOfBackcompat();
    editJson(join(dir, "artifacts/triggers.json"), (text) => text.replace("system-tests", "system-tesTs"));
    expect(await verifyRunpackDirectory(dir)).toEqual({
      status: "fail",
      checked_files: 8n,
      errors: ["hash mismatch for artifacts/triggers.json"],
    });
  });

  it("names an edited file hash and the root hash", async () => {
    const dir = copyOfBackcompat();
    editJson(join(dir, "manifest.json"), (text) =>
      text.replace(
        '"hash":{"algorithm":"sha256","value":"e34a5f6d953f87540a082ae36e1a954998dc49a86578b1141518771f7b997961"},"path"',
        '"hash":{"algorithm":"sha256","value":"f34a5f6d953f87540a082ae36e1a954998dc49a86578b1141518771f7b997961"},"path"',
      ),
    );
    const report = await verifyRunpackDirectory(dir);
    expect(report.errors).toEqual(["hash mismatch for artifacts/triggers.json", "root hash mismatch"]);
  });

  it("names a missing artifact", async () => {
    const dir = copyOfBackcompat();
    unlinkSync(join(dir, "artifacts/packets.json"));
    expect(await verifyRunpackDirectory(dir)).toEqual({
      status: "fail",
      checked_files: 7n,
      errors: ["artifact read failed for artifacts/packets.json: artifact error: unable to read artifact metadata"],
    });
  });

  it("names a file the manifest does not list", async () => {
    const dir = copyOfBackcompat();
    writeFileSync(join(dir, "artifacts/extra.json"), "[]");
    expect((await verifyRunpackDirectory(dir)).errors).toEqual(["unexpected file in runpack: artifacts/extra.json"]);
  });

  it("stops at an unsupported manifest version", async () => {
    const dir = copyOfBackcompat();
    editJson(join(dir, "manifest.json"), (text) => text.replace('"manifest_version":"v1"', '"manifest_version":"v2"'));
    expect(await verifyRunpackDirectory(dir)).toEqual({
      status: "fail",
      checked_files: 0n,
      errors: ["unsupported manifest version: v2"],
    });
  });

  it("reports a duplicated decision", async () => {
    const dir = copyOfBackcompat();
    editJson(join(dir, "artifacts/decisions.json"), (text) => `[${text.slice(1, -1)},${text.slice(1, -1)}]`);
    const report = await verifyRunpackDirectory(dir);
    expect(report.errors).toEqual([
      "hash mismatch for artifacts/decisions.json",
      "duplicate decision for trigger trigger-1",
    ]);
  });

  it("refuses a manifest that is not a manifest", async () => {
    const dir = copyOfBackcompat();
    writeFileSync(join(dir, "manifest.json"), '{"manifest_version":"v1"}');
    await expect(verifyRunpackDirectory(dir)).rejects.toMatchObject({
      kind: "runpack",
      code: "manifest_invalid",
      message: expect.stringContaining("invalid manifest: manifest.generated_at: missing field"),
    });
  });
});
