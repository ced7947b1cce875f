import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DecisionGateError, InvalidInputError } from "../../src/core/errors.js";
import { ControlPlane } from "../../src/core/run/control-plane.js";
import type { RunState } from "../../src/core/run/schema.js";
import { type RunStateStore, type RunStoreVerifier, StaleRunVersionError } from "../../src/core/run/store.js";
import { sha256Hex } from "../../src/json/hash.js";
import type { JsonValue } from "../../src/json/value.js";
import { canonicalJson } from "../../src/json/write.js";
import { MemoryRunStateStore } from "../../src/store/memory/run-state.js";
import { openPostgresDatabase, type PostgresDatabase } from "../../src/store/postgres/database.js";
import { PostgresRunStateStore } from "../../src/store/postgres/run-state.js";
import { openSqliteDatabase, type SqliteDatabase } from "../../src/store/sqlite/database.js";
import { SqliteRunStateStore } from "../../src/store/sqlite/run-state.js";
import { type PostgresCluster, skipWithoutPostgres, startPostgres } from "../support/postgres.js";
import { toolCallChange } from "../support/run-changes.js";
import { logical, nextRequest, RELEASE_GATE, runConfig, specFrom } from "../support/scenarios.js";
import { TimeEvidence } from "../support/time-evidence.js";
import { until } from "../support/until.js";

/*
 * The run-state store contract (src/core/run/store.ts), the same cases against every backend: memory, SQLite and
 * PostgreSQL (a throwaway cluster; skipped with a notice where PostgreSQL is not installed, required under CI).
 */

type Store = RunStateStore & RunStoreVerifier;

/** One database of a backend: stores on it, and a way to damage its rows from outside the store. */
interface Database {
  /**
   * A store on this database; a new one each call where the backend has more than one connection. `lockIdleTimeoutMs`
   * bounds how long a run's lock may sit idle (PostgreSQL).
   */
  store(options?: { lockIdleTimeoutMs?: number }): Promise<Store>;
  /** Flips a byte of the run's newest record, as a disk fault or a manual edit would. */
  flipNewestRecord?(): Promise<void>;
  /** Rewrites the run's first decision (a hold becomes a pass of no gate) with its own `record_sha256` recomputed. */
  forgeFirstDecision?(): Promise<void>;
  /** How many advisory locks are held, and how many requests for one wait, in the database (PostgreSQL). */
  advisoryLocks?(): Promise<{ held: number; waiting: number }>;
  /** Ends the sessions holding advisory locks, as a lost connection would (PostgreSQL); how many it ended. */
  endLockHolders?(): Promise<number>;
}

const FORGED = ['"unmet_gates":["window_gate"]', '"unmet_gates":[]'] as const;

interface Backend {
  name: string;
  skip: boolean;
  database(): Promise<Database>;
}

const KEY = runConfig();
const RUN = "1/2/run-1";
const NEVER_PASSES = RELEASE_GATE.replace('"timestamp": 5', '"timestamp": 1000000');
const closers: Array<() => Promise<void> | void> = [];

afterAll(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

const memory: Backend = {
  name: "memory",
  skip: false,
  async database() {
    const store = new MemoryRunStateStore();
    return { store: async () => store };
  },
};

const sqlite: Backend = {
  name: "SQLite",
  skip: false,
  async database() {
    const dir = mkdtempSync(join(tmpdir(), "dg-contract-"));
    const path = join(dir, "store.db");
    const open = () => {
      const db = openSqliteDatabase({ path, journal_mode: "wal", sync_mode: "full", busy_timeout_ms: 5000 });
      closers.push(() => db.close());
      return db;
    };
    const first: SqliteDatabase = open();
    closers.push(() => rmSync(dir, { recursive: true, force: true }));
    let opened = 0;
    return {
      store: async () => new SqliteRunStateStore(opened++ === 0 ? first : open()),
      async flipNewestRecord() {
        first
          .prepare(
            `UPDATE run_records SET record_json = CAST(replace(CAST(record_json AS TEXT), '"correlation_id"', '"correlation_iD"') AS BLOB)
             WHERE position = (SELECT max(position) FROM run_records)`,
          )
          .run();
      },
      async forgeFirstDecision() {
        const where = "WHERE kind = 'decision' AND seq = 1";
        const row = first.prepare<{ record_json: Buffer }>(`SELECT record_json FROM run_records ${where}`).get();
        const forged = Buffer.from(String(row?.record_json).replace(...FORGED));
        first
          .prepare(`UPDATE run_records SET record_json = ?, record_sha256 = ? ${where}`)
          .run(forged, sha256Hex(forged));
      },
    };
  },
};

let cluster: PostgresCluster | undefined;
const skipPostgres = skipWithoutPostgres("the store contract on PostgreSQL");

const postgres: Backend = {
  name: "PostgreSQL",
  skip: skipPostgres,
  async database() {
    if (cluster === undefined) throw new Error("no PostgreSQL cluster");
    const url = await cluster.createDatabase();
    const name = new URL(url).pathname.slice(1);
    const open = async (options: { lockIdleTimeoutMs?: number } = {}) => {
      const db: PostgresDatabase = await openPostgresDatabase({ url, ...options });
      closers.push(() => db.close());
      return new PostgresRunStateStore(db);
    };
    const server = cluster;
    return {
      store: open,
      async advisoryLocks() {
        const counts = `SELECT count(*) FILTER (WHERE granted)::integer AS held,
          count(*) FILTER (WHERE NOT granted)::integer AS waiting FROM pg_locks WHERE locktype = 'advisory'`;
        const [row] = await server.sql<{ held: number; waiting: number }>(counts, [], name);
        return row ?? { held: 0, waiting: 0 };
      },
      async endLockHolders() {
        const holders = `SELECT pg_terminate_backend(pid) AS ended FROM pg_locks
          WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()`;
        return (await server.sql(holders, [], name)).length;
      },
      async flipNewestRecord() {
        await server.sql(
          `UPDATE run_records SET record_json = convert_to(replace(convert_from(record_json, 'UTF8'), '"correlation_id"', '"correlation_iD"'), 'UTF8')
           WHERE position = (SELECT max(position) FROM run_records)`,
          [],
          name,
        );
      },
      async forgeFirstDecision() {
        await server.sql(
          `UPDATE run_records SET record_json = convert_to(replace(convert_from(record_json, 'UTF8'), $1, $2), 'UTF8'),
             record_sha256 = encode(sha256(convert_to(replace(convert_from(record_json, 'UTF8'), $1, $2), 'UTF8')), 'hex')
           WHERE kind = 'decision' AND seq = 1`,
          [...FORGED],
          name,
        );
      },
    };
  },
};

beforeAll(async () => {
  if (!skipPostgres) cluster = await startPostgres();
  closers.push(async () => cluster?.destroy());
}, 120_000);

function planeOn(store: RunStateStore, spec = RELEASE_GATE) {
  return new ControlPlane(specFrom(spec), { store, evidence: new TimeEvidence() });
}

/** A fresh database of `backend` with the run started through `holder`, and `other`, a second store on it. */
async function twoStoresOnOneRun(backend: Backend, holderOptions?: { lockIdleTimeoutMs?: number }) {
  const db = await backend.database();
  const [holder, other] = [await db.store(holderOptions), await db.store()];
  await planeOn(holder, NEVER_PASSES).start(runConfig(), logical(1), false);
  return { db, holder, other };
}

/** Opens the run through `store` and commits one tool call, `callId`, at the version it read. */
async function commitToolCall(store: RunStateStore, callId: string): Promise<void> {
  const session = await store.open(KEY);
  await store.commit(KEY, session?.head.version ?? -1, toolCallChange(callId));
}

const canonical = (value: unknown) => canonicalJson(value as JsonValue);

/** The same calls on any store; what they answered and the run they left, to compare between backends. */
async function workedExample(store: RunStateStore) {
  const plane = planeOn(store);
  const outcomes = [
    await plane.start(runConfig(), logical(1), true),
    await plane.next(nextRequest("t-1", 3)),
    await plane.next(nextRequest("t-1", 3)),
    await plane.next(nextRequest("t-2", 10)),
    await plane.next(nextRequest("t-3", 11)),
  ];
  return { outcomes: canonical(outcomes), state: canonical(await store.load(KEY)) };
}

async function errorOf(call: Promise<unknown>): Promise<DecisionGateError> {
  const error = await call.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  if (!(error instanceof DecisionGateError)) throw new Error(`expected a typed error, got ${String(error)}`);
  return error;
}

const baseline = workedExample(new MemoryRunStateStore());

describe.each([memory, sqlite, postgres])("the run-state store contract: $name", (backend) => {
  describe.skipIf(backend.skip)(backend.name, () => {
    it("creates, opens, commits and loads a run exactly as the memory store does", async () => {
      const db = await backend.database();
      const store = await db.store();
      expect(await store.open(KEY)).toBeUndefined();
      expect(await store.load(KEY)).toBeUndefined();
      const ran = await workedExample(store);
      expect(ran).toEqual(await baseline);
      const session = await store.open(KEY);
      const state = (await store.load(KEY)) as RunState;
      expect(session?.head.counts).toMatchObject({ triggers: 4, decisions: state.decisions.length });
      const decided = state.decisions.find((decision) => decision.trigger_id === "t-2");
      expect(canonical(await session?.decisionForTrigger("t-2"))).toBe(canonical(decided));
      expect(await session?.decisionForTrigger("t-9")).toBeUndefined();
      expect(await store.verifyRuns("full")).toEqual({ runs: 1, records: expect.any(Number), problems: [] });
      const again = await errorOf(planeOn(store).start(runConfig(), logical(1), true));
      expect(again.code).toBe("run_exists");
    });

    it("refuses a commit at a stale version and records nothing of it", async () => {
      const db = await backend.database();
      const store = await db.store();
      await planeOn(store).start(runConfig(), logical(1), false);
      const version = (await store.open(KEY))?.head.version ?? -1;
      await store.commit(KEY, version, toolCallChange("call-1"));
      await expect(store.commit(KEY, version, toolCallChange("call-2"))).rejects.toBeInstanceOf(StaleRunVersionError);
      await expect(store.commit({ ...KEY, run_id: "missing" }, 0, toolCallChange("call-3"))).rejects.toBeInstanceOf(
        StaleRunVersionError,
      );
      const state = (await store.load(KEY)) as RunState;
      expect(state.tool_calls.map((call) => call.call_id)).toEqual(["call-1"]);
      expect((await store.open(KEY))?.head.version).toBe(version + 1);
    });

    it("refuses a second decision for a trigger id (the trigger-list fence) and records nothing of it", async () => {
      const db = await backend.database();
      const store = await db.store();
      const plane = planeOn(store, NEVER_PASSES);
      await plane.start(runConfig(), logical(1), false);
      await plane.next(nextRequest("t-1", 3));
      const before = (await store.load(KEY)) as RunState;
      const decided = before.decisions.at(-1);
      if (decided === undefined) throw new Error("no decision");
      const change = toolCallChange("call-1");
      change.appended.decisions.push({ ...decided, seq: decided.seq + 1n, decision_id: "another" });
      const version = (await store.open(KEY))?.head.version ?? -1;
      const error = await errorOf(store.commit(KEY, version, change));
      expect(error.code).toBe("store_corrupt");
      expect(error.message).toBe(`run state corrupt: ${RUN}: refused a second decision for trigger "t-1"`);
      expect(canonical(await store.load(KEY))).toBe(canonical(before));
    });

    it("commits from two store instances on one database never fork a run or duplicate a seq", async () => {
      const db = await backend.database();
      const stores = [await db.store(), await db.store()];
      let stale = 0;
      let queued = 0;
      for (const store of stores) {
        const exclusive = store.exclusive.bind(store);
        store.exclusive = (key, work) => {
          queued++;
          return exclusive(key, work);
        };
        const commit = store.commit.bind(store);
        store.commit = async (...args) => {
          try {
            return await commit(...args);
          } catch (error) {
            if (error instanceof StaleRunVersionError) stale++;
            throw error;
          }
        };
      }
      const planes = stores.map((store) => planeOn(store, NEVER_PASSES));
      await planes[0]?.start(runConfig(), logical(1), false);
      const triggers = 40;
      const results = await Promise.all(
        Array.from({ length: triggers }, (_, i) => planes[i % 2]?.next(nextRequest(`t-${i}`, 2 + i))),
      );
      const replays = await Promise.all(
        Array.from({ length: triggers }, (_, i) => planes[(i + 1) % 2]?.next(nextRequest(`t-${i}`, 2 + i))),
      );
      expect(new Set(results.map((outcome) => outcome?.result.decision.seq)).size).toBe(triggers);
      expect(replays.map((outcome) => outcome?.result.decision.seq)).toEqual(
        results.map((outcome) => outcome?.result.decision.seq),
      );
      const state = (await stores[1]?.load(KEY)) as RunState;
      const seqs = Array.from({ length: triggers }, (_, i) => BigInt(i + 1));
      expect(state.triggers.map((trigger) => trigger.seq)).toEqual(seqs);
      expect(state.decisions.map((decision) => decision.seq)).toEqual(seqs);
      expect(new Set(state.decisions.map((decision) => decision.trigger_id)).size).toBe(triggers);
      if (stores[0] !== stores[1]) {
        expect(stale).toBeGreaterThan(0);
        // A call that lost a race runs again queued for the run: once per call, whatever it lost after.
        expect(queued).toBeGreaterThan(0);
        expect(queued).toBeLessThanOrEqual(stale);
      }
    });

    it.skipIf(backend.name !== "PostgreSQL")(
      "an id PostgreSQL text cannot hold (a NUL character) is refused as invalid input, and nothing is recorded",
      async () => {
        const db = await backend.database();
        const store = await db.store();
        const nul = { ...KEY, run_id: "run\u0000one" };
        const plane = planeOn(store, NEVER_PASSES);
        for (const call of [
          () => store.open(nul),
          () => plane.start(runConfig({ run_id: nul.run_id }), logical(1), false),
        ]) {
          const error = await errorOf(call());
          expect(error).toBeInstanceOf(InvalidInputError);
          expect(error.message).toMatch(/^run state store cannot store the text of this call: .*NUL \(U\+0000\)/);
        }
        expect((await store.verifyRuns("full")).runs).toBe(0);
      },
    );

    it.skipIf(backend.name !== "PostgreSQL")(
      "a run held by one store (exclusive) refuses the other store's commits until released, and takes its own",
      async () => {
        const { holder, other } = await twoStoresOnOneRun(backend);
        await holder.exclusive(KEY, async () => {
          await expect(commitToolCall(other, "call-other")).rejects.toBeInstanceOf(StaleRunVersionError);
          await commitToolCall(holder, "call-holder");
        });
        await commitToolCall(other, "call-other");
        const state = (await holder.load(KEY)) as RunState;
        expect(state.tool_calls.map((call) => call.call_id)).toEqual(["call-holder", "call-other"]);
        // What the held work throws comes back as thrown, not as a store failure.
        const own = new RangeError("the work's own failure");
        await expect(holder.exclusive(KEY, () => Promise.reject(own))).rejects.toBe(own);
      },
    );

    it.skipIf(backend.name !== "PostgreSQL")(
      "a held run whose lock's connection is lost still answers what its work did (the lock goes with the session)",
      async () => {
        const { db, holder, other } = await twoStoresOnOneRun(backend);
        const answer = await holder.exclusive(KEY, async () => {
          expect(await db.endLockHolders?.()).toBe(1);
          // The lock is gone with its session: another store's commit is no longer held back.
          await commitToolCall(other, "call-other");
          await commitToolCall(holder, "call-holder");
          return "committed";
        });
        expect(answer).toBe("committed");
        const state = (await holder.load(KEY)) as RunState;
        expect(state.tool_calls.map((call) => call.call_id)).toEqual(["call-other", "call-holder"]);
      },
    );

    it.skipIf(backend.name !== "PostgreSQL")(
      "a run's lock left idle past its bound is given up: the run is free for others, and the held work still answers",
      async () => {
        const { db, holder, other } = await twoStoresOnOneRun(backend, { lockIdleTimeoutMs: 500 });
        const answer = await holder.exclusive(KEY, async () => {
          // A step that outlasts the bound, as a frozen holder would: PostgreSQL ends the lock's session.
          await until(async () => (await db.advisoryLocks?.())?.held === 0, 10_000);
          await commitToolCall(other, "call-other");
          return "answered";
        });
        expect(answer).toBe("answered");
        const state = (await holder.load(KEY)) as RunState;
        expect(state.tool_calls.map((call) => call.call_id)).toEqual(["call-other"]);
      },
    );

    it.skipIf(backend.name !== "PostgreSQL")(
      "a store queued for a run goes before any other store's write: a losing replica is served next",
      async () => {
        const db = await backend.database();
        const [holder, queued, other] = [await db.store(), await db.store(), await db.store()];
        await planeOn(holder, NEVER_PASSES).start(runConfig(), logical(1), false);
        const committed: string[] = [];
        const commitAs = async (store: Store, callId: string) => {
          await commitToolCall(store, callId);
          committed.push(callId);
        };
        let release = () => {};
        const released = new Promise<void>((resolve) => {
          release = resolve;
        });
        let holding = () => {};
        const held = new Promise<void>((resolve) => {
          holding = resolve;
        });
        const first = holder.exclusive(KEY, async () => {
          holding();
          await released;
        });
        await held;
        let refused = () => {};
        const otherRefused = new Promise<void>((resolve) => {
          refused = resolve;
        });
        const second = queued.exclusive(KEY, async () => {
          await otherRefused;
          await commitAs(queued, "call-queued");
        });
        await until(async () => (await db.advisoryLocks?.())?.waiting === 1, 10_000);
        release();
        await first;
        // The holder is done: the store that queued behind it keeps this write out, though it has written nothing.
        await expect(commitAs(other, "call-other")).rejects.toBeInstanceOf(StaleRunVersionError);
        refused();
        await second;
        await commitAs(other, "call-other");
        expect(committed).toEqual(["call-queued", "call-other"]);
      },
    );

    it.skipIf(backend.name === "memory")("a row altered in the database fails closed, naming the run", async () => {
      const db = await backend.database();
      const store = await db.store();
      const plane = planeOn(store, NEVER_PASSES);
      await plane.start(runConfig(), logical(1), false);
      await plane.next(nextRequest("t-1", 3));
      await db.flipNewestRecord?.();
      const fresh = await db.store();
      const calls = [() => fresh.open(KEY), () => fresh.load(KEY), () => planeOn(fresh).next(nextRequest("t-2", 4))];
      for (const call of calls) {
        const error = await errorOf(call());
        expect(error.code).toBe("store_corrupt");
        expect(error.message).toMatch(
          new RegExp(`^run state corrupt: ${RUN}: record \\d+ \\(\\w+ \\d+\\): hash mismatch$`),
        );
      }
      const check = await fresh.verifyRuns("full");
      expect(check.problems).toEqual([expect.stringMatching(new RegExp(`^run state corrupt: ${RUN}: `))]);
    });

    it.skipIf(backend.name === "memory")(
      "a record rewritten with its own hash recomputed is never served: its chain link fails closed",
      async () => {
        const db = await backend.database();
        const store = await db.store();
        const plane = planeOn(store, NEVER_PASSES);
        await plane.start(runConfig(), logical(1), false);
        const held = await plane.next(nextRequest("t-1", 3));
        await plane.next(nextRequest("t-2", 4));
        expect(held.result.decision.outcome).toMatchObject({ summary: { unmet_gates: ["window_gate"] } });
        await db.forgeFirstDecision?.();
        const fresh = await db.store();
        const replay = await errorOf(planeOn(fresh, NEVER_PASSES).next(nextRequest("t-1", 3)));
        expect(replay.message).toMatch(new RegExp(`^run state corrupt: ${RUN}: record \\d+: chain link broken$`));
        expect((await fresh.verifyRuns("full")).problems).toEqual([
          expect.stringMatching(new RegExp(`^run state corrupt: ${RUN}: record \\d+: chain link broken$`)),
        ]);
        expect((await fresh.verifyRuns("tail")).problems).toEqual([]);
      },
    );
  });
});
