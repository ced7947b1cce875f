import type { z } from "zod";
import { ControlPlaneError } from "../core/errors.js";
import { decode } from "../core/wire/common.js";
import { sha256Hex } from "../json/hash.js";
import { parseJsonBytes } from "../json/parse.js";

/* Reading stored rows back as untrusted, the same way in every backend. */

/**
 * A stored row failed verification. The store fails closed and names the item, e.g.
 * `run state corrupt: 1/2/run-1: record 7 (decision 3): hash mismatch`.
 */
export function storeCorrupt(store: "run state" | "scenario registry" | "schema registry", item: string, what: string) {
  return new ControlPlaneError("store_corrupt", `${store} corrupt: ${item}: ${what}`, { item });
}

/**
 * Reads back a stored canonical-JSON blob as untrusted: the size, the sha256 recorded beside it, the JSON and
 * the record's schema must all check out; otherwise `fail` builds the error naming what is wrong.
 */
export function decodeVerified<T extends z.ZodType>(
  schema: T,
  bytes: unknown,
  sha256: unknown,
  maxBytes: number,
  fail: (what: string) => Error,
): z.output<T> {
  if (!(bytes instanceof Uint8Array)) throw fail("stored bytes missing");
  if (bytes.length > maxBytes) throw fail(`stored bytes exceed size limit: ${bytes.length} bytes (max ${maxBytes})`);
  if (sha256Hex(bytes) !== sha256) throw fail("hash mismatch");
  try {
    return decode(schema, parseJsonBytes(bytes), "record");
  } catch (error) {
    throw fail(`undecodable: ${error instanceof Error ? error.message : String(error)}`);
  }
}
