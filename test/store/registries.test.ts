import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ConflictError, InvalidInputError, StoreUnavailableError } from "../../src/core/errors.js";
import { specHash } from "../../src/core/spec/hash.js";
import type { ScenarioSpec } from "../../src/core/spec/schema.js";
import { decode } from "../../src/core/wire/common.js";
import { sha256Hex } from "../../src/json/hash.js";
import { parseJson } from "../../src/json/parse.js";
import { canonicalBytes } from "../../src/json/write.js";
import { openStores } from "../../src/store/factory.js";
import { MemoryScenarioRegistry } from "../../src/store/memory/scenario-registry.js";
import { MemorySchemaRegistry } from "../../src/store/memory/schema-registry.js";
import { openPostgresDatabase, type PostgresDatabase } from "../../src/store/postgres/database.js";
import { PostgresScenarioRegistry } from "../../src/store/postgres/scenario-registry.js";
import { PostgresSchemaRegistry } from "../../src/store/postgres/schema-registry.js";
import { DataShapeRecord, type ScenarioRegistry, type SchemaRegistry } from "../../src/store/registries.js";
import { MAX_PAGE_LIMIT, type SchemaLimits } from "../../src/store/registry-common.js";
import { openSqliteDatabase, type SqliteDatabase } from "../../src/store/sqlite/database.js";
import { SqliteScenarioRegistry } from "../../src/store/sqlite/scenario-registry.js";
import { SqliteSchemaRegistry } from "../../src/store/sqlite/schema-registry.js";
import { type PostgresCluster, skipWithoutPostgres, startPostgres } from "../support/postgres.js";
import { RELEASE_GATE, specFrom } from "../support/scenarios.js";

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/** A throwaway PostgreSQL cluster for the file, when PostgreSQL is available (else its cases are skipped). */
const withoutPostgres = skipWithoutPostgres("scenario and schema registries");
let cluster: PostgresCluster | undefined;
beforeAll(async () => {
  if (!withoutPostgres) cluster = await startPostgres();
}, 60_000);
afterAll(async () => {
  await cluster?.destroy();
});

/** The file's PostgreSQL database, created on first use. */
let sharedUrl: Promise<string> | undefined;

/**
 * A handle on a migrated PostgreSQL database with empty registries (emptied rather than created anew: creating a
 * database takes a few hundred milliseconds). Each handle has its own pool, so two act as two replicas.
 */
async function emptyPostgres(): Promise<PostgresDatabase> {
  if (cluster === undefined) throw new Error("no PostgreSQL cluster");
  sharedUrl ??= cluster.createDatabase();
  const db = await openPostgresDatabase({ url: await sharedUrl });
  cleanup.push(() => db.close());
  await db.query("test", "TRUNCATE scenarios, data_shapes");
  return db;
}

function tempDatabase(): SqliteDatabase {
  const dir = mkdtempSync(join(tmpdir(), "dg-registry-"));
  const db = openSqliteDatabase({
    path: join(dir, "store.db"),
    journal_mode: "wal",
    sync_mode: "full",
    busy_timeout_ms: 5000,
  });
  cleanup.push(
    () => rmSync(dir, { recursive: true, force: true }),
    () => db.close(),
  );
  return db;
}

const UNLIMITED: SchemaLimits = { maxSchemaBytes: 1024 * 1024 };

const scenarioImplementations: Array<[string, () => Promise<ScenarioRegistry>]> = [
  ["memory", async () => new MemoryScenarioRegistry()],
  ["sqlite", async () => new SqliteScenarioRegistry(tempDatabase())],
  ...(withoutPostgres
    ? []
    : [
        ["postgres", async () => new PostgresScenarioRegistry(await emptyPostgres())] as [
          string,
          () => Promise<ScenarioRegistry>,
        ],
      ]),
];
const schemaImplementations: Array<[string, (limits?: SchemaLimits) => Promise<SchemaRegistry>]> = [
  ["memory", async (limits = UNLIMITED) => new MemorySchemaRegistry(limits)],
  ["sqlite", async (limits = UNLIMITED) => new SqliteSchemaRegistry(tempDatabase(), limits)],
  ...(withoutPostgres
    ? []
    : [
        ["postgres", async (limits = UNLIMITED) => new PostgresSchemaRegistry(await emptyPostgres(), limits)] as [
          string,
          (limits?: SchemaLimits) => Promise<SchemaRegistry>,
        ],
      ]),
];

function scenario(id: string, overrides: Partial<ScenarioSpec> = {}): ScenarioSpec {
  return { ...specFrom(RELEASE_GATE), scenario_id: id, ...overrides };
}

async function define(registry: ScenarioRegistry, spec: ScenarioSpec) {
  return registry.define(spec, specHash(spec));
}

const ids = (page: { items: Array<{ scenario_id: string }> }) => page.items.map((item) => item.scenario_id);

describe.each(scenarioImplementations)("scenario registry (%s)", (_name, create) => {
  it("defining an identical spec again is idempotent; a different spec under the same id conflicts", async () => {
    const registry = await create();
    const spec = scenario("gate");
    expect(await define(registry, spec)).toEqual({ created: true });
    expect(await define(registry, scenario("gate"))).toEqual({ created: false });
    const changed = scenario("gate", { spec_version: "v2" });
    const attempt = define(registry, changed);
    await expect(attempt).rejects.toBeInstanceOf(ConflictError);
    await expect(define(registry, changed)).rejects.toMatchObject({
      code: "scenario_exists",
      message: "scenario already defined",
    });
    expect((await registry.get(1n, 2n, "gate"))?.spec_hash).toEqual(specHash(spec));
  });

  it("returns the stored spec and its hash", async () => {
    const registry = await create();
    const spec = scenario("gate", { default_tenant_id: 7n });
    await define(registry, spec);
    expect(await registry.get(7n, 2n, "gate")).toEqual({
      tenant_id: 7n,
      namespace_id: 2n,
      scenario_id: "gate",
      spec,
      spec_hash: specHash(spec),
    });
    expect(await registry.get(7n, 2n, "missing")).toBeUndefined();
  });

  it("scopes by tenant and namespace: a tenant's own definition shadows the namespace-wide one", async () => {
    const registry = await create();
    const shared = scenario("gate");
    const own = scenario("gate", { default_tenant_id: 7n });
    const other = scenario("gate", { default_tenant_id: 8n, spec_version: "other" });
    for (const spec of [shared, own, other]) expect(await define(registry, spec)).toEqual({ created: true });
    await define(registry, scenario("elsewhere", { namespace_id: 3n }));

    expect((await registry.get(7n, 2n, "gate"))?.spec_hash).toEqual(specHash(own));
    expect((await registry.get(8n, 2n, "gate"))?.spec_hash).toEqual(specHash(other));
    expect((await registry.get(9n, 2n, "gate"))?.spec_hash).toEqual(specHash(shared));
    expect(await registry.get(7n, 2n, "elsewhere")).toBeUndefined();
    expect(await registry.get(7n, 3n, "gate")).toBeUndefined();

    const page = await registry.list(7n, 2n, null, 10);
    expect(page.items.map((item) => [item.scenario_id, item.tenant_id])).toEqual([["gate", 7n]]);
    expect(ids(await registry.list(9n, 2n, null, 10))).toEqual(["gate"]);
    expect(ids(await registry.list(7n, 3n, null, 10))).toEqual(["elsewhere"]);
  });

  it("a tenant-scoped definition is invisible to other tenants", async () => {
    const registry = await create();
    await define(registry, scenario("private", { default_tenant_id: 7n }));
    expect(await registry.get(8n, 2n, "private")).toBeUndefined();
    expect(await registry.list(8n, 2n, null, 10)).toEqual({ items: [], next_token: null });
  });

  it("pages by scenario id with the reference's next_token rule", async () => {
    const registry = await create();
    for (const id of ["e", "c", "a", "d", "b"]) await define(registry, scenario(id));
    const first = await registry.list(1n, 2n, null, 2);
    expect([ids(first), first.next_token]).toEqual([["a", "b"], "b"]);
    const second = await registry.list(1n, 2n, first.next_token, 2);
    expect([ids(second), second.next_token]).toEqual([["c", "d"], "d"]);
    const last = await registry.list(1n, 2n, second.next_token, 2);
    expect([ids(last), last.next_token]).toEqual([["e"], "e"]);
    expect(await registry.list(1n, 2n, last.next_token, 2)).toEqual({ items: [], next_token: null });

    const whole = await registry.list(1n, 2n, null, 5);
    expect([ids(whole), whole.next_token]).toEqual([["a", "b", "c", "d", "e"], "e"]);
    expect(ids(await registry.list(1n, 2n, null, MAX_PAGE_LIMIT))).toHaveLength(5);
  });

  it("an unknown cursor continues after its position in sort order", async () => {
    const registry = await create();
    for (const id of ["a", "c", "e"]) await define(registry, scenario(id));
    expect(ids(await registry.list(1n, 2n, "b", 10))).toEqual(["c", "e"]);
    expect(ids(await registry.list(1n, 2n, "", 10))).toEqual(["a", "c", "e"]);
    expect(await registry.list(1n, 2n, "z", 10)).toEqual({ items: [], next_token: null });
  });

  it("shadowed ids are listed once, also across a page boundary", async () => {
    const registry = await create();
    await define(registry, scenario("a"));
    await define(registry, scenario("a", { default_tenant_id: 7n }));
    await define(registry, scenario("b", { default_tenant_id: 7n }));
    await define(registry, scenario("b"));
    const first = await registry.list(7n, 2n, null, 1);
    expect(first.items.map((item) => [item.scenario_id, item.tenant_id])).toEqual([["a", 7n]]);
    const second = await registry.list(7n, 2n, first.next_token, 1);
    expect(second.items.map((item) => [item.scenario_id, item.tenant_id])).toEqual([["b", 7n]]);
    expect(await registry.list(7n, 2n, second.next_token, 1)).toEqual({ items: [], next_token: null });
  });

  it("sorts ids by UTF-8 bytes, not UTF-16 code units", async () => {
    const registry = await create();
    for (const id of ["\u{1F600}", "\uFF5E", "Z", "a"]) await define(registry, scenario(id));
    expect(ids(await registry.list(1n, 2n, null, 10))).toEqual(["Z", "a", "\uFF5E", "\u{1F600}"]);
  });

  it("refuses page limits outside 1..=1000", async () => {
    const registry = await create();
    for (const limit of [0, MAX_PAGE_LIMIT + 1, 1.5]) {
      await expect(registry.list(1n, 2n, null, limit)).rejects.toThrow(
        new InvalidInputError("limit must be between 1 and 1000"),
      );
    }
    expect(await registry.list(1n, 2n, null, 1)).toEqual({ items: [], next_token: null });
  });

  it("refuses a spec hash that is not the spec's", async () => {
    const registry = await create();
    await expect(registry.define(scenario("gate"), specHash(scenario("other")))).rejects.toThrow(
      new InvalidInputError("spec_hash does not match spec"),
    );
    expect(await registry.get(1n, 2n, "gate")).toBeUndefined();
  });

  it("is ready", async () => {
    expect(await (await create()).ready()).toBe(true);
  });
});

const BASE_SHAPE = `{"tenant_id":1,"namespace_id":2,"schema_id":"s","version":"1","schema":{"type":"object"},
  "description":null,"created_at":{"kind":"logical","value":1}}`;

/** A data shape: the base record with the members of `json` (lossless JSON text) replacing its own. */
function shape(json: string): DataShapeRecord {
  const merged = { ...(parseJson(BASE_SHAPE) as object), ...(parseJson(json) as object) };
  return decode(DataShapeRecord, merged, "record");
}

const keys = (page: { items: DataShapeRecord[] }) => page.items.map((item) => `${item.schema_id}@${item.version}`);

describe.each(schemaImplementations)("schema registry (%s)", (_name, create) => {
  it("stores records immutably and returns them as registered", async () => {
    const registry = await create();
    const signed = shape('{"schema_id":"signed","signing":{"key_id":"k","signature":"sig"},"description":"d"}');
    const plain = shape('{"schema":{"const":18446744073709551615}}');
    await registry.register(signed);
    await registry.register(plain);
    expect(await registry.get(1n, 2n, "signed", "1")).toEqual(signed);
    expect(await registry.get(1n, 2n, "s", "1")).toEqual(plain);
    expect((await registry.get(1n, 2n, "s", "1"))?.schema).toEqual({ const: 18446744073709551615n });
    expect(await registry.get(1n, 2n, "s", "2")).toBeUndefined();
  });

  it("refuses a second record under the same identity", async () => {
    const registry = await create();
    await registry.register(shape("{}"));
    const attempt = registry.register(shape('{"description":"different"}'));
    await expect(attempt).rejects.toBeInstanceOf(ConflictError);
    await expect(registry.register(shape("{}"))).rejects.toMatchObject({
      code: "schema_exists",
      message: "schema already registered",
    });
    expect(await registry.count(1n, 2n)).toBe(1);
  });

  it("scopes by tenant and namespace, and counts per tenant and namespace", async () => {
    const registry = await create();
    await registry.register(shape("{}"));
    await registry.register(shape('{"tenant_id":9}'));
    await registry.register(shape('{"namespace_id":3}'));
    await registry.register(shape('{"version":"2"}'));
    expect(await registry.get(9n, 3n, "s", "1")).toBeUndefined();
    expect([await registry.count(1n, 2n), await registry.count(9n, 2n), await registry.count(1n, 3n)]).toEqual([
      2, 1, 1,
    ]);
    expect(await registry.count(5n, 5n)).toBe(0);
    expect(keys(await registry.list(9n, 2n, null, 10))).toEqual(["s@1"]);
  });

  it("pages by (schema_id, version) with JSON cursors and the reference's next_token rule", async () => {
    const registry = await create();
    for (const [id, version] of [
      ["b", "1"],
      ["a", "2"],
      ["a", "10"],
      ["c", "1"],
      ["a", "1"],
    ]) {
      await registry.register(shape(JSON.stringify({ schema_id: id, version })));
    }
    const first = await registry.list(1n, 2n, null, 2);
    expect(keys(first)).toEqual(["a@1", "a@10"]);
    expect(first.next_token).toBe('{"schema_id":"a","version":"10"}');
    const second = await registry.list(1n, 2n, first.next_token, 2);
    expect([keys(second), second.next_token]).toEqual([["a@2", "b@1"], '{"schema_id":"b","version":"1"}']);
    const last = await registry.list(1n, 2n, second.next_token, 2);
    expect([keys(last), last.next_token]).toEqual([["c@1"], '{"schema_id":"c","version":"1"}']);
    expect(await registry.list(1n, 2n, last.next_token, 2)).toEqual({ items: [], next_token: null });
    expect(keys(await registry.list(1n, 2n, null, MAX_PAGE_LIMIT))).toHaveLength(5);
  });

  it("continues strictly after a cursor that names no record", async () => {
    const registry = await create();
    for (const id of ["a", "c"]) await registry.register(shape(JSON.stringify({ schema_id: id })));
    expect(keys(await registry.list(1n, 2n, '{"schema_id":"a","version":"5"}', 10))).toEqual(["c@1"]);
    expect(keys(await registry.list(1n, 2n, '{"version":"0","schema_id":"a","extra":1}', 10))).toEqual(["a@1", "c@1"]);
  });

  it("refuses an invalid cursor and page limits outside 1..=1000", async () => {
    const registry = await create();
    for (const cursor of ["nope", "{}", "[]", '{"schema_id":1,"version":"1"}', '{"schema_id":"a"}']) {
      await expect(registry.list(1n, 2n, cursor, 10)).rejects.toThrow(new InvalidInputError("invalid cursor"));
    }
    await expect(registry.list(1n, 2n, null, 0)).rejects.toThrow("limit must be between 1 and 1000");
    await expect(registry.list(1n, 2n, null, 1001)).rejects.toThrow("limit must be between 1 and 1000");
  });

  it("limits the canonical schema size", async () => {
    const registry = await create({ maxSchemaBytes: 17 });
    await registry.register(shape('{"schema":{"type":"object"}}'));
    await expect(registry.register(shape('{"version":"2","schema":{"type":"objects"}}'))).rejects.toThrow(
      new InvalidInputError("schema exceeds size limit: 18 bytes (max 17)"),
    );
  });

  it("limits entries per tenant and namespace", async () => {
    const registry = await create({ maxSchemaBytes: 1024, maxEntries: 2 });
    await registry.register(shape("{}"));
    await registry.register(shape('{"version":"2"}'));
    await expect(registry.register(shape('{"version":"3"}'))).rejects.toThrow(
      new InvalidInputError("schema registry entry limit exceeded: 2 entries (max 2)"),
    );
    await registry.register(shape('{"tenant_id":3}'));
    expect(await registry.count(3n, 2n)).toBe(1);
  });
});

describe("SQLite registries", () => {
  it("refuse a configured schema size above the 1 MiB hard cap", () => {
    expect(() => new SqliteSchemaRegistry(tempDatabase(), { maxSchemaBytes: 1024 * 1024 + 1 })).toThrow(
      "schema_registry_max_schema_bytes out of range: 1048577 (max 1048576)",
    );
  });

  it("keep definitions and schemas across a restart", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dg-registry-"));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const options = {
      path: join(dir, "store.db"),
      journal_mode: "wal",
      sync_mode: "full",
      busy_timeout_ms: 5000,
    } as const;
    const before = openSqliteDatabase(options);
    await define(new SqliteScenarioRegistry(before), scenario("gate"));
    await new SqliteSchemaRegistry(before, UNLIMITED).register(shape("{}"));
    before.close();
    const after = openSqliteDatabase(options);
    cleanup.push(() => after.close());
    expect((await new SqliteScenarioRegistry(after).get(1n, 2n, "gate"))?.spec).toEqual(scenario("gate"));
    expect(await new SqliteSchemaRegistry(after, UNLIMITED).get(1n, 2n, "s", "1")).toEqual(shape("{}"));
    expect(await define(new SqliteScenarioRegistry(after), scenario("gate"))).toEqual({ created: false });
  });

  it("serve a verified scenario from memory, frozen, and see definitions made by other connections", async () => {
    const db = tempDatabase();
    const other = openSqliteDatabase({ path: db.path, journal_mode: "wal", sync_mode: "full", busy_timeout_ms: 5000 });
    cleanup.push(() => other.close());
    const scenarios = new SqliteScenarioRegistry(db);
    await define(scenarios, scenario("gate"));
    const first = await scenarios.get(1n, 2n, "gate");
    expect(first?.spec).toEqual(scenario("gate"));
    expect(await scenarios.get(1n, 2n, "gate")).toBe(first);
    expect(Object.isFrozen(first?.spec.stages[0])).toBe(true);
    // Another process defines tenant 1's own "gate": it shadows the cached namespace-wide one at once.
    const own = scenario("gate", { default_tenant_id: 1n, spec_version: "own" });
    await define(new SqliteScenarioRegistry(other), own);
    expect((await scenarios.get(1n, 2n, "gate"))?.spec_hash).toEqual(specHash(own));
    expect(await scenarios.get(3n, 2n, "gate")).toBe(first);
    expect(await scenarios.get(1n, 2n, "missing")).toBeUndefined();
  });

  it("keep at most the configured number of verified scenarios, and still fail closed on a changed row", async () => {
    const db = tempDatabase();
    const scenarios = new SqliteScenarioRegistry(db, 1);
    await define(scenarios, scenario("gate"));
    await define(scenarios, scenario("other"));
    const gate = await scenarios.get(1n, 2n, "gate");
    expect(await scenarios.get(1n, 2n, "gate")).toBe(gate);
    expect((await scenarios.get(1n, 2n, "other"))?.scenario_id).toBe("other");
    const again = await scenarios.get(1n, 2n, "gate");
    expect(again).not.toBe(gate);
    expect(again).toEqual(gate);
    // Cached or not, a row whose bytes changed is verified again.
    db.prepare(
      "UPDATE scenarios SET spec_json = CAST(replace(CAST(spec_json AS TEXT), 'review', 'reviex') AS BLOB)",
    ).run();
    await expect(scenarios.get(1n, 2n, "gate")).rejects.toMatchObject({
      code: "store_corrupt",
      message: "scenario registry corrupt: */2/gate: hash mismatch",
    });
  });

  it("fail closed on a stored row that does not match its hash", async () => {
    const db = tempDatabase();
    const scenarios = new SqliteScenarioRegistry(db);
    const schemas = new SqliteSchemaRegistry(db, UNLIMITED);
    await define(scenarios, scenario("gate"));
    await schemas.register(shape("{}"));
    db.prepare(
      "UPDATE scenarios SET spec_json = CAST(replace(CAST(spec_json AS TEXT), 'review', 'reviex') AS BLOB)",
    ).run();
    db.prepare(
      "UPDATE data_shapes SET record_json = CAST(replace(CAST(record_json AS TEXT), 'object', 'objecx') AS BLOB)",
    ).run();
    await expect(scenarios.get(1n, 2n, "gate")).rejects.toMatchObject({
      code: "store_corrupt",
      message: "scenario registry corrupt: */2/gate: hash mismatch",
    });
    await expect(scenarios.list(1n, 2n, null, 10)).rejects.toMatchObject({ code: "store_corrupt" });
    await expect(define(scenarios, scenario("gate"))).rejects.toMatchObject({ code: "store_corrupt" });
    await expect(schemas.get(1n, 2n, "s", "1")).rejects.toMatchObject({
      code: "store_corrupt",
      message: "schema registry corrupt: 1/2/s@1: hash mismatch",
    });
    await expect(schemas.list(1n, 2n, null, 10)).rejects.toMatchObject({ code: "store_corrupt" });
  });
});

describe.skipIf(withoutPostgres)("PostgreSQL registries", () => {
  it("see at once what another replica (another pool) defined and registered", async () => {
    const a = await emptyPostgres();
    const b = await openPostgresDatabase({ url: await (sharedUrl as Promise<string>) });
    cleanup.push(() => b.close());
    await define(new PostgresScenarioRegistry(a), scenario("gate"));
    expect((await new PostgresScenarioRegistry(b).get(1n, 2n, "gate"))?.spec_hash).toEqual(specHash(scenario("gate")));
    // The same definition through the other replica is idempotent; a different one conflicts there too.
    expect(await define(new PostgresScenarioRegistry(b), scenario("gate"))).toEqual({ created: false });
    await expect(
      define(new PostgresScenarioRegistry(b), scenario("gate", { spec_version: "v2" })),
    ).rejects.toMatchObject({ code: "scenario_exists" });
    await new PostgresSchemaRegistry(b, UNLIMITED).register(shape("{}"));
    expect(await new PostgresSchemaRegistry(a, UNLIMITED).get(1n, 2n, "s", "1")).toEqual(shape("{}"));
  });

  it("keep at most max_connections connections per replica, for both sections on one URL", async () => {
    const server = cluster;
    if (server === undefined) throw new Error("no PostgreSQL cluster");
    const url = await server.createDatabase();
    const database = new URL(url).pathname.slice(1);
    const connectionsAfterBurst = async (maxConnections: number | undefined) => {
      const section = { type: "postgres" as const, url, max_connections: maxConnections };
      const stores = await openStores({ run_state_store: section, schema_registry: { type: "postgres", url } });
      try {
        await Promise.all(Array.from({ length: 24 }, () => stores.schemas.list(1n, 2n, null, 10)));
        const [row] = await server.sql<{ open: number }>(
          "SELECT count(*)::integer AS open FROM pg_stat_activity WHERE datname = $1 AND application_name = 'decision-gate'",
          [database],
        );
        return row?.open;
      } finally {
        await stores.close();
      }
    };
    expect(await connectionsAfterBurst(2)).toBe(2);
    expect(await connectionsAfterBurst(undefined)).toBeGreaterThan(2);
  });

  it("keep max_entries when replicas register at once", async () => {
    const limits = { maxSchemaBytes: 1024, maxEntries: 3 };
    const databases = [await emptyPostgres(), await emptyPostgres(), await emptyPostgres()];
    // Warm connections in every pool, so the registrations below really overlap.
    await Promise.all(databases.flatMap((db) => [1, 2, 3, 4].map(() => db.query("test", "SELECT pg_sleep(0.05)"))));
    const replicas = databases.map((db) => new PostgresSchemaRegistry(db, limits));
    const attempts = await Promise.allSettled(
      Array.from({ length: 24 }, (_, i) => replicas[i % 3]?.register(shape(`{"schema_id":"s${i}"}`))),
    );
    expect(attempts.filter((attempt) => attempt.status === "fulfilled")).toHaveLength(3);
    const refused = attempts.filter((attempt) => attempt.status === "rejected").map((attempt) => attempt.reason);
    for (const reason of refused) expect(String(reason)).toContain("schema registry entry limit exceeded");
    expect(await replicas[0]?.count(1n, 2n)).toBe(3);
  });

  it("fail closed on a row changed in the database, also after it was served from memory", async () => {
    const db = await emptyPostgres();
    const scenarios = new PostgresScenarioRegistry(db);
    const schemas = new PostgresSchemaRegistry(db, UNLIMITED);
    await define(scenarios, scenario("gate"));
    await schemas.register(shape("{}"));
    expect((await scenarios.get(1n, 2n, "gate"))?.scenario_id).toBe("gate");
    const edit = (table: string, column: string, from: string, to: string) =>
      db.query(
        "test",
        `UPDATE ${table} SET ${column} = convert_to(replace(convert_from(${column}, 'UTF8'), $1, $2), 'UTF8')`,
        [from, to],
      );
    await edit("scenarios", "spec_json", "review", "reviex");
    await edit("data_shapes", "record_json", "object", "objecx");
    await expect(scenarios.get(1n, 2n, "gate")).rejects.toMatchObject({
      code: "store_corrupt",
      message: "scenario registry corrupt: */2/gate: hash mismatch",
    });
    await expect(scenarios.list(1n, 2n, null, 10)).rejects.toMatchObject({ code: "store_corrupt" });
    await expect(define(scenarios, scenario("gate"))).rejects.toMatchObject({ code: "store_corrupt" });
    await expect(schemas.get(1n, 2n, "s", "1")).rejects.toMatchObject({
      code: "store_corrupt",
      message: "schema registry corrupt: 1/2/s@1: hash mismatch",
    });
    // A row moved under another key, hash and all, is refused by its key columns.
    await db.query("test", "UPDATE data_shapes SET record_json = $1, record_sha256 = $2, version = '2'", [
      Buffer.from(canonicalBytes(shape("{}"))),
      sha256Hex(canonicalBytes(shape("{}"))),
    ]);
    await expect(schemas.get(1n, 2n, "s", "2")).rejects.toMatchObject({
      message: "schema registry corrupt: 1/2/s@2: key columns do not match the record",
    });
  });

  it("fail fast with a retryable error while the database is down, and recover by themselves", async () => {
    const db = await emptyPostgres();
    const scenarios = new PostgresScenarioRegistry(db);
    await define(scenarios, scenario("gate"));
    expect(await scenarios.ready()).toBe(true);
    await cluster?.stop("fast");
    try {
      const started = Date.now();
      expect(await scenarios.ready()).toBe(false);
      const error = await scenarios.get(1n, 2n, "gate").catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(error).toMatchObject({ kind: "inflight_limit", code: "store_unavailable" });
      expect((error as Error).message).toMatch(
        /^scenario registry unavailable: postgres:\/\/decision_gate@127\.0\.0\.1:\d+\/dg_test_\d+: .*; retry later$/,
      );
      expect((error as Error).message).not.toContain(cluster?.password);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await cluster?.start();
    }
    // The same handle, without a restart: the pool opens new connections.
    expect(await scenarios.ready()).toBe(true);
    expect((await scenarios.get(1n, 2n, "gate"))?.scenario_id).toBe("gate");
  }, 60_000);
});
