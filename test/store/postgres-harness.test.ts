import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { APP_ROLE, type PostgresCluster, skipWithoutPostgres, startPostgres } from "../support/postgres.js";

/* The throwaway cluster the PostgreSQL tests run on: a real server that can be stopped, crashed and restarted. */

describe.skipIf(skipWithoutPostgres("test cluster harness"))("throwaway PostgreSQL cluster", () => {
  let cluster: PostgresCluster;
  beforeAll(async () => {
    cluster = await startPostgres();
  }, 60_000);
  afterAll(async () => {
    await cluster?.destroy();
  });

  async function query(url: string, text: string): Promise<Record<string, unknown>[]> {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query(text)).rows;
    } finally {
      await client.end();
    }
  }

  it("serves a fresh database to the application role over TCP with its password, not as superuser", async () => {
    const url = await cluster.createDatabase();
    expect(url).toMatch(new RegExp(`^postgres://${APP_ROLE}:${cluster.password}@127\\.0\\.0\\.1:${cluster.port}/`));
    const [row] = await query(url, "SELECT current_user, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)");
    expect(row).toEqual({ current_user: APP_ROLE, rolsuper: false });
    const [settings] = await cluster.sql(
      "SELECT current_setting('fsync') AS fsync, current_setting('synchronous_commit') AS sc",
    );
    expect(settings).toEqual({ fsync: "on", sc: "on" });
    // A wrong password is refused: the URL's password is what lets the server in.
    await expect(query(url.replace(cluster.password, "wrong"), "SELECT 1")).rejects.toThrow(
      /password authentication failed/,
    );
  });

  it("keeps committed rows across a crash (immediate stop) and a restart on the same port", async () => {
    const url = await cluster.createDatabase();
    await query(url, "CREATE TABLE t (n int); INSERT INTO t VALUES (1), (2)");
    await cluster.stop("immediate");
    expect(cluster.running).toBe(false);
    await expect(query(url, "SELECT 1")).rejects.toThrow(/ECONNREFUSED/);
    await cluster.start();
    expect(await query(url, "SELECT sum(n)::int AS total FROM t")).toEqual([{ total: 3 }]);
  }, 60_000);
});
