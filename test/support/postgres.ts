import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";

/*
 * A throwaway PostgreSQL cluster for tests: `initdb` into a temporary directory, `postgres` on a free port on
 * 127.0.0.1 with its unix socket in that directory, one database per caller, everything removed afterwards.
 *
 * Binaries come from Debian's `postgresql` package (`/usr/lib/postgresql/<version>/bin`, installed by .ci/run), or
 * from `DECISION_GATE_TEST_PG_BIN`. PostgreSQL refuses to run as root, so a root test process runs them as the
 * `postgres` system user. Without PostgreSQL, test files skip with a visible notice (`skipWithoutPostgres`);
 * under CI they fail instead.
 *
 * Durability settings stay as in production (fsync and synchronous_commit on), since tests check what survives a
 * crash. `full_page_writes` is off: it only guards against pages torn by an OS crash or power loss, which no test
 * can cause, and it makes every first write after a checkpoint cost a full page of WAL.
 */

/** The role the server connects as: owner of every database created here, not a superuser. */
export const APP_ROLE = "decision_gate";

const SETTINGS = {
  listen_addresses: "'127.0.0.1'",
  max_connections: "200",
  shared_buffers: "'16MB'",
  full_page_writes: "off",
  fsync: "on",
  synchronous_commit: "on",
  log_min_messages: "warning",
  log_min_error_statement: "panic",
  logging_collector: "off",
};

export interface PostgresCluster {
  readonly port: number;
  readonly socketDir: string;
  /** The application role's password: it appears in every URL from `createDatabase`, never in error text. */
  readonly password: string;
  /** Creates a fresh database owned by `APP_ROLE` and returns its libpq URL (with the role's password). */
  createDatabase(name?: string): Promise<string>;
  /** Runs `text` as superuser (over the unix socket) in `database` (default `postgres`) and returns the rows. */
  sql<Row extends Record<string, unknown> = Record<string, unknown>>(
    text: string,
    params?: unknown[],
    database?: string,
  ): Promise<Row[]>;
  /** Stops the server: `fast` (clean) or `immediate` (like a crash: WAL recovery at the next start). */
  stop(mode?: "fast" | "immediate"): Promise<void>;
  /** Starts the server again on the same port. */
  start(): Promise<void>;
  /** Whether the server is running (as far as this harness knows). */
  readonly running: boolean;
  /** The server log (warnings and errors). */
  log(): string;
  /** Stops the server (immediately) and deletes its directory. */
  destroy(): Promise<void>;
}

const isRoot = (): boolean => process.getuid?.() === 0;

/** Where the PostgreSQL binaries are, or why there are none. */
function findBinaries(): { bin: string } | { missing: string } {
  const configured = process.env.DECISION_GATE_TEST_PG_BIN;
  const candidates =
    configured !== undefined && configured !== ""
      ? [configured]
      : versionsNewestFirst("/usr/lib/postgresql").map((version) => `/usr/lib/postgresql/${version}/bin`);
  const bin = candidates.find((dir) => existsSync(join(dir, "initdb")) && existsSync(join(dir, "postgres")));
  if (bin === undefined) {
    return { missing: "no PostgreSQL binaries (apt-get install postgresql, or set DECISION_GATE_TEST_PG_BIN)" };
  }
  if (isRoot() && spawnSync("id", ["-u", "postgres"], { stdio: "ignore" }).status !== 0) {
    return { missing: "running as root and there is no `postgres` system user to run PostgreSQL as" };
  }
  return { bin };
}

function versionsNewestFirst(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => /^\d+$/.test(name))
    .sort((a, b) => Number(b) - Number(a));
}

const found = findBinaries();

const inCi = (): boolean => {
  const ci = process.env.CI ?? "";
  return ci !== "" && ci !== "0" && ci.toLowerCase() !== "false";
};

/** Why PostgreSQL cannot run here, or undefined when it can (for benchmarks, which skip quietly). */
export function postgresMissing(): string | undefined {
  return "bin" in found ? undefined : found.missing;
}

/**
 * For `describe.skipIf(skipWithoutPostgres("…"))`: true (with a notice on the console) when PostgreSQL is not
 * available here. Under CI the missing server is an error instead, so the tests cannot silently not run.
 */
export function skipWithoutPostgres(what: string): boolean {
  if ("bin" in found) return false;
  const message = `PostgreSQL tests skipped (${what}): ${found.missing}`;
  if (inCi()) throw new Error(`${message}; CI must run them (.ci/run installs postgresql)`);
  console.warn(`\n*** ${message} ***\n`);
  return true;
}

/** Runs a PostgreSQL binary as the `postgres` user when this process is root, else as this user. */
function command(bin: string, program: string, args: string[]): { file: string; args: string[] } {
  const path = join(bin, program);
  return isRoot() ? { file: "runuser", args: ["-u", "postgres", "--", path, ...args] } : { file: path, args };
}

async function run(bin: string, program: string, args: string[]): Promise<void> {
  const { file, args: fullArgs } = command(bin, program, args);
  const child = spawn(file, fullArgs, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk) => {
    output += chunk.toString();
  });
  child.stderr.on("data", (chunk) => {
    output += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", resolve);
  });
  if (code !== 0) throw new Error(`${program} ${args.join(" ")} exited with ${code}:\n${output}`);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject()));
    });
  });
}

/** Clusters still running, stopped when the test process exits without having destroyed them. */
const live = new Set<{ bin: string; dataDir: string }>();
process.once("exit", () => {
  for (const cluster of live) {
    const { file, args } = command(cluster.bin, "pg_ctl", ["stop", "-D", cluster.dataDir, "-m", "immediate", "-w"]);
    spawnSync(file, args, { stdio: "ignore" });
  }
});

/** A server certificate and its key (PEM files) for a cluster that takes TCP connections over TLS only. */
export interface PostgresTls {
  certFile: string;
  keyFile: string;
}

/**
 * Settings and a `pg_hba.conf` in `dir` for TLS only over TCP: the server's certificate and key are copied there
 * (PostgreSQL wants the key owned by the user it runs as and readable by nobody else); unencrypted TCP connections
 * are rejected, the unix socket stays open to the superuser.
 */
function tlsOnly(dir: string, tls: PostgresTls): { settings: Record<string, string>; files: string[] } {
  const cert = join(dir, "server.crt");
  const key = join(dir, "server.key");
  const hba = join(dir, "pg_hba.conf");
  copyFileSync(tls.certFile, cert);
  copyFileSync(tls.keyFile, key);
  chmodSync(key, 0o600);
  writeFileSync(
    hba,
    [
      "local all all trust",
      "hostssl all all 127.0.0.1/32 scram-sha-256",
      "hostnossl all all 127.0.0.1/32 reject",
      "",
    ].join("\n"),
  );
  return {
    settings: { ssl: "on", ssl_cert_file: `'${cert}'`, ssl_key_file: `'${key}'`, hba_file: `'${hba}'` },
    files: [cert, key, hba],
  };
}

/**
 * Creates and starts a throwaway cluster; with `tls`, one that takes TCP connections over TLS only. Callers must
 * have checked `skipWithoutPostgres` first.
 */
export async function startPostgres(options: { tls?: PostgresTls } = {}): Promise<PostgresCluster> {
  if (!("bin" in found)) throw new Error(`PostgreSQL is not available: ${found.missing}`);
  const { bin } = found;
  const dir = mkdtempSync(join(tmpdir(), "dg-pg-"));
  const dataDir = join(dir, "data");
  const logFile = join(dir, "server.log");
  const superPasswordFile = join(dir, "superuser-password");
  const password = randomBytes(12).toString("hex");
  writeFileSync(superPasswordFile, randomBytes(12).toString("hex"));
  writeFileSync(logFile, "");
  const tls = options.tls === undefined ? undefined : tlsOnly(dir, options.tls);
  if (isRoot()) {
    const uid = Number(spawnSync("id", ["-u", "postgres"]).stdout.toString());
    const gid = Number(spawnSync("id", ["-g", "postgres"]).stdout.toString());
    for (const path of [dir, superPasswordFile, logFile, ...(tls?.files ?? [])]) chownSync(path, uid, gid);
  }
  const handle = { bin, dataDir };
  let port = 0;
  let running = false;
  let databases = 0;

  // --no-sync: the fresh cluster need not survive an OS crash; the running server keeps fsync on.
  await run(bin, "initdb", [
    "-D",
    dataDir,
    "-U",
    "postgres",
    `--pwfile=${superPasswordFile}`,
    "--auth-local=trust",
    "--auth-host=scram-sha-256",
    "--encoding=UTF8",
    "--locale=C",
    "--no-sync",
  ]);

  const start = async (): Promise<void> => {
    const settings = { ...SETTINGS, ...tls?.settings, port: String(port), unix_socket_directories: `'${dir}'` };
    const options = Object.entries(settings)
      .map(([key, value]) => `-c ${key}=${value}`)
      .join(" ");
    await run(bin, "pg_ctl", ["start", "-D", dataDir, "-l", logFile, "-w", "-t", "60", "-o", options]);
    running = true;
    live.add(handle);
  };

  const stop = async (mode: "fast" | "immediate" = "fast"): Promise<void> => {
    if (!running) return;
    await run(bin, "pg_ctl", ["stop", "-D", dataDir, "-m", mode, "-w", "-t", "60"]);
    running = false;
    live.delete(handle);
  };

  const sql = async <Row extends Record<string, unknown>>(
    text: string,
    params: unknown[] = [],
    database = "postgres",
  ) => {
    const client = new pg.Client({ host: dir, port, user: "postgres", database });
    await client.connect();
    try {
      return (await client.query<Row>(text, params)).rows;
    } finally {
      await client.end();
    }
  };

  const log = (): string => readFileSync(logFile, "utf8");

  // Another process may take the free port between finding it and the server binding it: try another one.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await start();
      break;
    } catch (error) {
      if (attempt >= 5 || !/could not (bind|create listen)|Address already in use/i.test(log())) {
        rmSync(dir, { recursive: true, force: true });
        throw new Error(`${(error as Error).message}\n${log()}`);
      }
    }
  }
  await sql(`CREATE ROLE ${APP_ROLE} LOGIN PASSWORD '${password}'`);

  return {
    get port() {
      return port;
    },
    socketDir: dir,
    password,
    get running() {
      return running;
    },
    async createDatabase(name = `dg_test_${++databases}`) {
      await sql(`CREATE DATABASE ${pg.escapeIdentifier(name)} OWNER ${APP_ROLE}`);
      return `postgres://${APP_ROLE}:${password}@127.0.0.1:${port}/${name}`;
    },
    sql,
    stop,
    start,
    log,
    async destroy() {
      await stop("immediate").catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
