import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setImmediate } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunState } from "../../src/core/run/schema.js";
import { buildRunpack, PAUSE_EVERY_BYTES } from "../../src/core/runpack/builder.js";
import type { RunpackSink } from "../../src/core/runpack/manifest.js";
import type { ScenarioSpec } from "../../src/core/spec/schema.js";
import { FilesystemRunpack, verifyRunpackDirectory } from "../../src/runpack/filesystem.js";
import { verifyRunpackDirectoryInWorker } from "../../src/runpack/verify-in-worker.js";
import { harness, logical, nextRequest, RELEASE_GATE, runConfig } from "../support/scenarios.js";

/*
 * Long runpack work must leave the event loop to others: the builder pauses between bounded chunks of records, and
 * the server verifies in a worker thread. "Turns" count how often a concurrent task got the event loop meanwhile.
 */

const DECISIONS = 2_000;
const GENERATED_AT = logical(0);

/** Files kept in memory: writing resolves at once, so the builder itself is all that could give up the loop. */
class MemorySink implements RunpackSink {
  readonly files = new Map<string, Buffer>();
  async write(path: string, bytes: Uint8Array): Promise<void> {
    this.files.set(path, Buffer.from(bytes));
  }
}

/** Runs `work` while a concurrent task counts the event-loop turns it gets (one per `setImmediate`). */
async function turnsDuring<T>(work: () => Promise<T>): Promise<{ result: T; turns: number }> {
  let done = false;
  let turns = 0;
  const counter = (async () => {
    while (!done) {
      await setImmediate();
      turns++;
    }
  })();
  try {
    return { result: await work(), turns };
  } finally {
    done = true;
    await counter;
  }
}

let spec: ScenarioSpec;
let state: RunState;
let dir: string;

beforeAll(async () => {
  // The gate waits for a time far in the future: every trigger is a recorded hold.
  const { plane, store } = harness(RELEASE_GATE.replace('"timestamp": 5', '"timestamp": 1000000000'));
  spec = plane.spec;
  await plane.start(runConfig(), logical(1), false);
  for (let i = 2; i < DECISIONS + 2; i++) await plane.next(nextRequest(`t-${i}`, i));
  state = (await store.load(runConfig())) as RunState;
  dir = mkdtempSync(join(tmpdir(), "dg-long-work-"));
  await buildRunpack(spec, state, new FilesystemRunpack(dir), { generatedAt: GENERATED_AT });
}, 120_000);

afterAll(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe("a long runpack export pauses between chunks of records", () => {
  it("gives the event loop a turn per chunk and writes the same bytes as without pauses", async () => {
    expect(state.decisions).toHaveLength(DECISIONS);
    const plain = new MemorySink();
    const blocking = await turnsDuring(() => buildRunpack(spec, state, plain, { generatedAt: GENERATED_AT }));
    expect(blocking.turns).toBe(0); // without pauses nothing else runs until the export is done

    const paused = new MemorySink();
    let pauses = 0;
    const pause = () => {
      pauses++;
      return setImmediate();
    };
    const cooperative = await turnsDuring(() =>
      buildRunpack(spec, state, paused, { generatedAt: GENERATED_AT, pause }),
    );
    expect([...paused.files.keys()]).toEqual([...plain.files.keys()]);
    for (const [path, bytes] of plain.files) expect(paused.files.get(path)?.equals(bytes), path).toBe(true);
    expect(cooperative.result).toEqual(blocking.result);

    const logBytes = [...paused.files.values()].reduce((sum, bytes) => sum + bytes.length, 0);
    expect(pauses).toBeGreaterThanOrEqual(Math.floor(logBytes / PAUSE_EVERY_BYTES) - paused.files.size);
    expect(pauses).toBeGreaterThan(10);
    expect(cooperative.turns).toBeGreaterThanOrEqual(pauses);
  });
});

describe("runpack verification in a worker thread", () => {
  it("reports what verifying in this thread reports, while this thread keeps getting turns", async () => {
    const here = await turnsDuring(() => verifyRunpackDirectory(dir));
    const inWorker = await turnsDuring(() => verifyRunpackDirectoryInWorker(dir, "manifest.json"));
    expect(here.result.status).toBe("pass");
    expect(inWorker.result).toEqual(here.result);
    // In this thread, only its file reads give other tasks a turn; the worker leaves the loop free throughout.
    expect(inWorker.turns).toBeGreaterThan(10 * here.turns);
  });

  it("rejects with the typed error verifying in this thread throws", async () => {
    const missing = join(dir, "no-such-runpack");
    const expected = await verifyRunpackDirectory(missing).catch((error: unknown) => error);
    const actual = await verifyRunpackDirectoryInWorker(missing, "manifest.json").catch((error: unknown) => error);
    expect(expected).toMatchObject({ kind: "runpack" });
    expect(actual).toMatchObject({
      kind: (expected as { kind: string }).kind,
      code: (expected as { code: string }).code,
      message: (expected as Error).message,
    });
  });
});
