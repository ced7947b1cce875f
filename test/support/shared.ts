import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseJson } from "../../src/json/parse.js";
import type { JsonValue } from "../../src/json/value.js";

/** The shared folder (spec, vectors, fixtures) beside the repository checkout. */
export const SHARED_DIR = fileURLToPath(new URL("../../../shared/", import.meta.url));

export function sharedPath(relative: string): string {
  return `${SHARED_DIR}${relative}`;
}

export function readSharedJson(relative: string): JsonValue {
  return parseJson(readFileSync(sharedPath(relative), "utf8"));
}
