import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { buildRunpack } from "../../src/core/runpack/builder.js";
import { FilesystemRunpack, verifyRunpackDirectory } from "../../src/runpack/filesystem.js";
import { harness, logical, nextRequest, runConfig } from "../support/scenarios.js";
import { jsonResult } from "../support/time-evidence.js";

const root = mkdtempSync(join(tmpdir(), "dg-anchors-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Runs the release gate once, with the `time` condition answered by `answer`, and exports with an anchor policy. */
async function exportWithPolicy(name: string, anchorValue: string) {
  const { plane, store, evidence } = harness();
  evidence.script("time", () => jsonResult(true, { anchor_type: "file_path_rooted", anchor_value: anchorValue }));
  await plane.start(runConfig(), logical(1), false);
  await plane.next(nextRequest("t-1", 10));
  const state = await store.load(runConfig());
  if (state === undefined) throw new Error("run vanished");
  const dir = join(root, name);
  await buildRunpack(plane.spec, state, new FilesystemRunpack(dir), {
    generatedAt: logical(20),
    anchorPolicy: {
      providers: [{ provider_id: "time", requirement: { anchor_type: "file_path_rooted", required_fields: ["path"] } }],
    },
  });
  return verifyRunpackDirectory(dir);
}

describe("offline anchor re-check", () => {
  it("passes recorded anchors that satisfy the manifest's policy", async () => {
    expect(await exportWithPolicy("good", '{"path":"a.json","root_id":"r"}')).toMatchObject({ status: "pass" });
  });

  it("names each recorded anchor that does not", async () => {
    expect((await exportWithPolicy("bad", '{"root_id":"r"}')).errors).toEqual([
      "anchor invalid for condition after_window (trigger t-1, stage review): anchor field path missing",
    ]);
  });
});
