import { DecisionGateError } from "../core/errors.js";
import { sha256Hex } from "../json/hash.js";
import { parseJsonBytes } from "../json/parse.js";
import { isJsonObject, type JsonValue } from "../json/value.js";
import { escapeString } from "../json/write.js";

/*
 * The canonicalization of the Stage35x series (ecosystem §4.3): Python's
 * `json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))`, hashed as UTF-8.
 *
 * It agrees with this project's JCS only on part of JSON, so it is implemented separately, on a model that holds
 * only what both agree on: ASCII keys, safe integers, strings, booleans and null. Anything else — floats (Python
 * writes `repr`, not ECMAScript form), integers beyond 2^53 and non-ASCII keys (Python sorts code points, not
 * UTF-16 units) — is refused rather than canonicalized differently.
 */

export const SORTED_JSON_CANONICALIZATION = "json-sorted-keys-compact-utf8" as const;

export type PlainJson = null | boolean | string | number | PlainJson[] | PlainJsonObject;
export interface PlainJsonObject {
  [key: string]: PlainJson;
}

/** A value outside the model above reached the canonicalizer. */
export class CanonicalizationRefusedError extends DecisionGateError {
  constructor(message: string) {
    super("invalid_params", "canonicalization_refused", `${SORTED_JSON_CANONICALIZATION}: ${message}`);
  }
}

/**
 * Converts a value from the lossless parser (src/json) into the model, or `undefined` when it holds a float (the parser keeps
 * every float literal a `number`), an integer beyond 2^53, bytes or a non-ASCII key.
 */
export function fromLosslessJson(value: JsonValue | undefined): PlainJson | undefined {
  try {
    return convert(value);
  } catch (error) {
    if (error instanceof CanonicalizationRefusedError) return undefined;
    throw error;
  }
}

/** Parses UTF-8 JSON bytes into an object of the model; `undefined` for invalid JSON, non-objects and refusals. */
export function parsePlainObject(bytes: Uint8Array): PlainJsonObject | undefined {
  let parsed: JsonValue;
  try {
    parsed = parseJsonBytes(bytes);
  } catch (error) {
    if (error instanceof DecisionGateError) return undefined;
    throw error;
  }
  const plain = fromLosslessJson(parsed);
  return isPlainObject(plain) ? plain : undefined;
}

function convert(value: JsonValue | undefined): PlainJson {
  if (value === null || typeof value === "boolean" || typeof value === "string") return value;
  if (typeof value === "bigint") {
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new CanonicalizationRefusedError("integer beyond 2^53");
    }
    return Number(value);
  }
  if (typeof value === "number") throw new CanonicalizationRefusedError("floats are not supported");
  if (Array.isArray(value)) return value.map(convert);
  if (isJsonObject(value)) {
    return Object.fromEntries(Object.keys(value).map((key) => [asciiKey(key), convert(value[key])]));
  }
  throw new CanonicalizationRefusedError("unsupported value");
}

export function isPlainObject(value: PlainJson | undefined): value is PlainJsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The canonical text; throws `CanonicalizationRefusedError` for values outside the model. */
export function sortedCompactJson(value: PlainJson): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "string":
      return escapeString(value);
    case "number":
      if (!Number.isSafeInteger(value)) throw new CanonicalizationRefusedError("only safe integers are supported");
      return String(value);
  }
  if (Array.isArray(value)) return `[${value.map(sortedCompactJson).join(",")}]`;
  const keys = Object.keys(value).map(asciiKey).sort();
  return `{${keys.map((key) => `${escapeString(key)}:${sortedCompactJson(value[key] as PlainJson)}`).join(",")}}`;
}

/** Hex SHA-256 of the canonical UTF-8 bytes. */
export function sortedJsonSha256(value: PlainJson): string {
  return sha256Hex(Buffer.from(sortedCompactJson(value), "utf8"));
}

/** Hex SHA-256 of `object` without `excluded` members: how every hash of the series is taken. */
export function sortedJsonSha256Without(object: PlainJsonObject, excluded: readonly string[]): string {
  return sortedJsonSha256(Object.fromEntries(Object.entries(object).filter(([key]) => !excluded.includes(key))));
}

/** Files of the series: `json.dumps(indent=2, ensure_ascii=False)` plus a newline, which `JSON.stringify` matches. */
export function prettyJson(value: PlainJson): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

function asciiKey(key: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the whole ASCII range is allowed
  if (!/^[\u0000-\u007f]*$/.test(key))
    throw new CanonicalizationRefusedError("non-ASCII object keys are not supported");
  return key;
}
