import { describe, expect, it } from "vitest";
import type { ScenarioSpec } from "../../src/core/spec/schema.js";
import type { ServerServices } from "../../src/server/services.js";
import { ScenarioRuntimes } from "../../src/server/tools/scenario-runtimes.js";
import { MemoryRunStateStore } from "../../src/store/memory/run-state.js";
import { MemoryScenarioRegistry } from "../../src/store/memory/scenario-registry.js";
import { logical, nextRequest, RELEASE_GATE, runConfig, specFrom } from "../support/scenarios.js";
import { TimeEvidence } from "../support/time-evidence.js";

/** The release gate under another id; its window never opens, so every `next` holds. */
const holdingSpec = (scenarioId: string): ScenarioSpec =>
  specFrom(RELEASE_GATE.replace('"timestamp": 5', '"timestamp": 1000000').replace('"release-gate"', `"${scenarioId}"`));

/** The services a `ScenarioRuntimes` uses, in memory; everything else keeps the control plane's defaults. */
function runtimesWith(capacity: number) {
  const runs = new MemoryRunStateStore();
  const services = {
    scenarios: new MemoryScenarioRegistry(),
    runs,
    decisionEvidence: new TimeEvidence(),
    evidence: { validateSpec: () => {} },
    actions: { issuer: null, log: null, includeInRunpack: false },
  } as unknown as ServerServices;
  return { runtimes: new ScenarioRuntimes(services, capacity), runs };
}

describe("ScenarioRuntimes", () => {
  it("keeps at most `capacity` control planes and rebuilds an evicted one from the registry", async () => {
    const { runtimes } = runtimesWith(2);
    await runtimes.define(holdingSpec("release-gate"));
    const first = await runtimes.lookup(1n, 2n, "release-gate");
    expect(await runtimes.lookup(1n, 2n, "release-gate")).toBe(first);

    for (let i = 0; i < 10; i++) await runtimes.define(holdingSpec(`other-${i}`));
    // The most recent planes are kept...
    const recent = await runtimes.lookup(1n, 2n, "other-9");
    expect(await runtimes.lookup(1n, 2n, "other-9")).toBe(recent);
    // ...the first was evicted: a new plane is built, and it works.
    const rebuilt = await runtimes.lookup(1n, 2n, "release-gate");
    expect(rebuilt).not.toBe(first);
    expect(rebuilt.specHash).toEqual(first.specHash);
    const { state } = await rebuilt.start(runConfig(), logical(1), false);
    expect(state.status).toBe("active");
  });

  it("serializes calls on one run across an evicted plane and its replacement (D3)", async () => {
    const { runtimes, runs } = runtimesWith(1);
    await runtimes.define(holdingSpec("release-gate"));
    const evicted = await runtimes.lookup(1n, 2n, "release-gate");
    await evicted.start(runConfig(), logical(1), false);
    await runtimes.define(holdingSpec("other"));
    const replacement = await runtimes.lookup(1n, 2n, "release-gate");
    expect(replacement).not.toBe(evicted);

    const results = await Promise.all(
      Array.from({ length: 32 }, (_, i) => (i % 2 ? evicted : replacement).next(nextRequest(`t-${i}`, 2 + i))),
    );
    expect(new Set(results.map(({ result }) => result.decision.seq)).size).toBe(32);
    const state = await runs.load(runConfig());
    expect(state?.decisions.map((decision) => decision.decision_id)).toEqual(
      Array.from({ length: 32 }, (_, i) => `decision-${i + 1}`),
    );
  });
});
