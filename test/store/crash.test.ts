import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { openSqliteDatabase } from "../../src/store/sqlite/database.js";
import { SqliteRunStateStore } from "../../src/store/sqlite/run-state.js";
import { type Ack, startBurst } from "../fixtures/store/burst-process.js";
import { runConfig } from "../support/scenarios.js";

const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const step of cleanup.splice(0).reverse()) step();
});

/** Runs a burst until it has acknowledged `acks` decisions, then kills it with SIGKILL. */
async function killMidBurst(path: string, prefix: string, acks: number): Promise<Ack[]> {
  const burst = startBurst(path, prefix, "forever");
  cleanup.push(() => burst.child.kill("SIGKILL"));
  await burst.ready;
  burst.go();
  await burst.acked(acks);
  burst.child.kill("SIGKILL");
  const exit = await burst.exited;
  expect(exit.signal).toBe("SIGKILL");
  return [...burst.acks];
}

/** Opens the file afresh, as a restarted server would, and checks every acknowledged decision is there. */
async function expectAcknowledgedDecisions(path: string, acks: Ack[]) {
  const db = openSqliteDatabase({ path, journal_mode: "wal", sync_mode: "full", busy_timeout_ms: 5000 });
  try {
    expect(db.prepare<{ integrity_check: string }>("PRAGMA integrity_check").get()?.integrity_check).toBe("ok");
    // `load` verifies every record's hash and the whole chain, and fails closed otherwise.
    const state = await new SqliteRunStateStore(db).load(runConfig());
    const recorded = new Map(state?.decisions.map((decision) => [decision.decision_id, decision.trigger_id]));
    const missing = acks.filter((ack) => recorded.get(ack.decisionId) !== ack.triggerId);
    expect(missing).toEqual([]);
    expect(state?.decisions.length).toBeGreaterThanOrEqual(acks.length);
    return state;
  } finally {
    db.close();
  }
}

describe("crash safety (SIGKILL under load)", () => {
  it("keeps every acknowledged decision and a verifiable chain, across two kills", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dg-crash-"));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, "runs.db");

    const first = await killMidBurst(path, "k1", 150);
    await expectAcknowledgedDecisions(path, first);

    // A second process continues the same run on the recovered file and is killed as well.
    const second = await killMidBurst(path, "k2", 150);
    const state = await expectAcknowledgedDecisions(path, [...first, ...second]);
    expect(state?.triggers.map((trigger) => trigger.seq)).toEqual(
      Array.from({ length: state?.triggers.length ?? 0 }, (_, i) => BigInt(i + 1)),
    );
  });
});
