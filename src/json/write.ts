import { HashError } from "./errors.js";
import { isJsonObject, type JsonObject, type JsonValue } from "./value.js";

/**
 * Canonical JSON as the reference computes it (serde_jcs 0.1): no whitespace; object members sorted by the
 * UTF-8 bytes of their escaped key text; integers (`bigint`) as exact digits; floats in ECMAScript form with
 * -0 written as `0`; strings escaping only `"`, `\` and control characters (lowercase `\u00xx`).
 * Object members whose value is `undefined` are omitted.
 */
export function canonicalJson(value: JsonValue): string {
  return write(value, true);
}

/** Compact JSON in insertion order with the same scalar rules, for wire output that is not hashed. */
export function compactJson(value: JsonValue): string {
  return write(value, false);
}

/** Canonical UTF-8 bytes, failing when they exceed `limit` bytes (exactly at the limit passes). */
export function canonicalBytes(value: JsonValue, limit?: number): Buffer {
  const bytes = Buffer.from(canonicalJson(value), "utf8");
  if (limit !== undefined && bytes.length > limit) {
    throw new HashError("size_limit_exceeded", `canonical json exceeds size limit (${bytes.length} > ${limit})`, {
      limit,
      actual: bytes.length,
    });
  }
  return bytes;
}

function write(value: JsonValue, sorted: boolean): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "string":
      return escapeString(value);
    case "bigint":
      return value.toString();
    case "number":
      return writeFloat(value);
  }
  if (value instanceof Uint8Array) return `[${value.join(",")}]`;
  if (Array.isArray(value)) {
    let out = "[";
    for (let index = 0; index < value.length; index++) {
      if (index > 0) out += ",";
      out += write(value[index] as JsonValue, sorted);
    }
    return `${out}]`;
  }
  if (isJsonObject(value)) return writeObject(value, sorted);
  throw new HashError("non_finite_float", `failed to canonicalize json: unsupported value ${typeof value}`);
}

function writeFloat(value: number): string {
  if (!Number.isFinite(value)) throw new HashError("non_finite_float", "failed to canonicalize json: non-finite float");
  return Object.is(value, -0) ? "0" : String(value);
}

function writeObject(value: JsonObject, sorted: boolean): string {
  const keys = Object.keys(value);
  const shape = sorted ? sortedShape(keys) : undefined;
  let out = "{";
  for (let index = 0; index < keys.length; index++) {
    const key = (shape === undefined ? keys[index] : shape.keys[index]) as string;
    const member = value[key];
    if (member === undefined) continue;
    if (out.length > 1) out += ",";
    out += shape === undefined ? escapeString(key) : shape.escaped[index];
    out += ":";
    out += write(member, sorted);
  }
  return `${out}}`;
}

/** An object's keys in canonical order, with their escaped text. */
interface Shape {
  keys: string[];
  escaped: string[];
}

/**
 * Canonical key orders by the object's own key list: records of one kind share a few shapes, so each is sorted
 * once. Bounded, since keys can come from callers' payloads: at most `MAX_SHAPES` key lists (the map is cleared
 * when full) of at most `MAX_SIGNATURE` characters each; longer ones are sorted every time.
 */
const SHAPES = new Map<string, Shape>();
const MAX_SHAPES = 1024;
const MAX_SIGNATURE = 1024;

function sortedShape(keys: string[]): Shape {
  // Length-prefixed, so distinct key lists never share a signature.
  let signature = "";
  for (const key of keys) {
    signature += `${key.length}:${key}`;
    if (signature.length > MAX_SIGNATURE) return sortKeys(keys);
  }
  let shape = SHAPES.get(signature);
  if (shape === undefined) {
    shape = sortKeys(keys);
    if (SHAPES.size >= MAX_SHAPES) SHAPES.clear();
    SHAPES.set(signature, shape);
  }
  return shape;
}

function sortKeys(keys: string[]): Shape {
  const members = keys.map((key) => [escapeString(key), key] as const).sort(compareEscapedKeys);
  return { keys: members.map(([, key]) => key), escaped: members.map(([escaped]) => escaped) };
}

/** Orders escaped keys (quotes included) by their UTF-8 bytes, as serde_jcs's byte-keyed map does. */
function compareEscapedKeys([a]: readonly [string, string], [b]: readonly [string, string]): number {
  if (isAscii(a) && isAscii(b)) return a < b ? -1 : a > b ? 1 : 0;
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

const SHORT_ESCAPES: Record<number, string> = { 8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r" };
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what must be escaped
const NEEDS_ESCAPE = /["\\\u0000-\u001f]/;

/**
 * A JSON string literal escaping only `"`, `\` and control characters (short forms where JSON has them, else
 * lowercase `\u00xx`): the rule of serde_json, and also of Python's `json.dumps(ensure_ascii=False)`.
 */
export function escapeString(text: string): string {
  if (!NEEDS_ESCAPE.test(text)) return `"${text}"`;
  let out = '"';
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x22) out += '\\"';
    else if (code === 0x5c) out += "\\\\";
    else if (code < 0x20) out += SHORT_ESCAPES[code] ?? `\\u00${code.toString(16).padStart(2, "0")}`;
    else out += text[i];
  }
  return `${out}"`;
}
