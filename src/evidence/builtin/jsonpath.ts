import { exec, type Path } from "jsonpath-rfc9535";
import parseJsonPath from "jsonpath-rfc9535/parser";
import { InternalError } from "../../core/errors.js";
import { isJsonObject, type JsonValue, toPlainJson } from "../../json/value.js";

/**
 * The JSONPath dialect of the `json` provider: RFC 9535, as implemented by `jsonpath-rfc9535`.
 *
 * - Queries start with `$`; dot and bracket notation, wildcards, descendants (`..`), indexes (negative ones
 *   count from the end), slices, unions and filters (`?@.id == 1`, `?(@.id == 1)`) with the RFC functions
 *   `length`, `count`, `match`, `search` and `value` (I-Regexp patterns).
 * - A query that does not parse, or that calls an unknown function or a function with the wrong number of
 *   arguments, is invalid. The other well-typedness rules of RFC 9535 §2.4.3 are not enforced.
 * - Filters compare plain JavaScript numbers, so integers beyond 2^53 are approximated inside comparisons;
 *   the selected values themselves are returned exactly as they are in the document.
 * - Quirks of `jsonpath_lib` 0.3 (the reference's library) are not reproduced.
 */
export type JsonPathSelection = { kind: "invalid" } | { kind: "matches"; values: JsonValue[] };

const FUNCTION_ARITY = new Map([
  ["length", 1],
  ["count", 1],
  ["match", 2],
  ["search", 2],
  ["value", 1],
]);

/** Every node `path` selects in `document`, in result order, with the document's exact (lossless) values. */
export function selectJsonPath(document: JsonValue, path: string): JsonPathSelection {
  if (!isValidJsonPath(path)) return { kind: "invalid" };
  const matchedPaths: Path[] = [];
  try {
    exec(toPlainJson(document) as Parameters<typeof exec>[0], path, (_value, matchedPath) => {
      matchedPaths.push(matchedPath);
    });
  } catch {
    return { kind: "invalid" };
  }
  return { kind: "matches", values: matchedPaths.map((matchedPath) => valueAt(document, matchedPath)) };
}

function isValidJsonPath(path: string): boolean {
  try {
    return callsOnlyKnownFunctions(parseJsonPath(path));
  } catch {
    return false;
  }
}

/** The library evaluates unknown functions to "no match"; this dialect rejects them as the RFC requires. */
function callsOnlyKnownFunctions(node: unknown): boolean {
  if (Array.isArray(node)) return node.every(callsOnlyKnownFunctions);
  if (typeof node !== "object" || node === null) return true;
  const fields = node as Record<string, unknown>;
  if (fields.type === "FunctionExpr") {
    const argumentCount = Array.isArray(fields.arguments) ? fields.arguments.length : 0;
    if (FUNCTION_ARITY.get(String(fields.name)) !== argumentCount) return false;
  }
  return Object.values(fields).every(callsOnlyKnownFunctions);
}

/** Follows a matched path (array indexes and normalized member names) through the lossless document. */
function valueAt(document: JsonValue, path: Path): JsonValue {
  let node = document;
  for (const segment of path) node = childOf(node, segment);
  return node;
}

function childOf(node: JsonValue, segment: string | number): JsonValue {
  const child = typeof segment === "number" ? elementOf(node, segment) : memberOf(node, unescapeNormalizedKey(segment));
  if (child === undefined) throw new InternalError(`jsonpath match is not in the document: ${String(segment)}`);
  return child;
}

function elementOf(node: JsonValue, index: number): JsonValue | undefined {
  if (node instanceof Uint8Array) {
    const byte = node[index];
    return byte === undefined ? undefined : BigInt(byte);
  }
  return Array.isArray(node) ? node[index] : undefined;
}

function memberOf(node: JsonValue, key: string): JsonValue | undefined {
  return isJsonObject(node) && Object.hasOwn(node, key) ? node[key] : undefined;
}

const NORMALIZED_ESCAPE = /\\(?:u([0-9a-f]{4})|([bfnrt'\\]))/g;
const ESCAPED_CHARACTERS: Record<string, string> = {
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
  "'": "'",
  "\\": "\\",
};

/** Reverses the escaping of member names in RFC 9535 normalized paths (§2.7). */
function unescapeNormalizedKey(key: string): string {
  return key.replace(NORMALIZED_ESCAPE, (_match, hex: string | undefined, character: string) =>
    hex === undefined ? (ESCAPED_CHARACTERS[character] ?? character) : String.fromCharCode(Number.parseInt(hex, 16)),
  );
}
