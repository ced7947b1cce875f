/*
 * PostgreSQL connection URLs (libpq form). A URL may carry a password, so nothing here ever returns or quotes
 * the URL itself: errors, logs and notices name a database by `databaseLabel`.
 */

/** The environment variable read when a `postgres` section sets no `url`. */
export const DATABASE_URL_ENV = "DECISION_GATE_DATABASE_URL";

/** Why `url` cannot name a PostgreSQL database, or undefined. Never quotes the URL. */
export function databaseUrlProblem(url: string): string | undefined {
  const parsed = parseUrl(url);
  if (parsed === undefined) return "must be a postgres:// or postgresql:// URL (it does not parse as a URL)";
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    return "must be a postgres:// or postgresql:// URL";
  }
  return undefined;
}

/** `user@host:port/database` without the password (and without query options, which may hold secrets too). */
export function databaseLabel(url: string): string {
  const parsed = parseUrl(url);
  if (parsed === undefined) return "postgres database";
  const user = parsed.username === "" ? "" : `${decodeURIComponent(parsed.username)}@`;
  const host = parsed.host === "" ? "localhost" : parsed.host;
  return `postgres://${user}${host}${parsed.pathname}`;
}

function parseUrl(url: string): URL | undefined {
  try {
    return new URL(url);
  } catch {
    return undefined;
  }
}
