/**
 * The in-memory model of a JSON document in Decision Gate.
 *
 * The reference implementation distinguishes integer literals (exact u64/i64) from floats (f64), and both
 * hashing and comparators depend on that distinction. This model encodes it in the JavaScript type:
 * - a `bigint` is an integer literal within the i64/u64 range (kept exact, also beyond 2^53);
 * - a `number` is a float (any literal with `.`, `e` or `E`, `-0`, or an integer outside i64/u64).
 * Byte strings (`Vec<u8>` in the reference) are `Uint8Array` and serialize as arrays of integers.
 */
export type JsonScalar = null | boolean | string | bigint | number;
export type JsonValue = JsonScalar | Uint8Array | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue | undefined;
}

export const U64_MAX = (1n << 64n) - 1n;
export const I64_MIN = -(1n << 63n);
export const I64_MAX = (1n << 63n) - 1n;

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

export function isJsonNumber(value: unknown): value is bigint | number {
  return typeof value === "bigint" || typeof value === "number";
}

/** Scalars in the comparator sense: null, booleans, numbers and strings. */
export function isJsonScalar(value: unknown): value is JsonScalar {
  return value === null || ["boolean", "string", "bigint", "number"].includes(typeof value);
}

/** Sets `key` on `target` without letting a `__proto__` key reach the prototype chain. */
export function setOwn(target: JsonObject, key: string, value: JsonValue | undefined): void {
  if (key === "__proto__") {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    target[key] = value;
  }
}

/**
 * Structural JSON equality as the reference defines it: objects as maps, arrays in order, strings exact, and
 * numbers compared by variant (an integer never equals a float; floats compare with `==`, so -0 equals 0).
 */
export function jsonEquals(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  if (a === b) return true;
  if (typeof a === "number" && typeof b === "number") return a === b;
  if (Array.isArray(a) || a instanceof Uint8Array) {
    if (!(Array.isArray(b) || b instanceof Uint8Array) || a.length !== b.length) return false;
    return asArray(a).every((item, index) => jsonEquals(item, asArray(b)[index]));
  }
  if (isJsonObject(a) && isJsonObject(b)) {
    const keys = definedKeys(a);
    if (keys.length !== definedKeys(b).length) return false;
    return keys.every((key) => b[key] !== undefined && jsonEquals(a[key], b[key]));
  }
  return false;
}

function asArray(value: JsonValue[] | Uint8Array): JsonValue[] {
  return value instanceof Uint8Array ? Array.from(value, (byte) => BigInt(byte)) : value;
}

function definedKeys(value: JsonObject): string[] {
  return Object.keys(value).filter((key) => value[key] !== undefined);
}

/**
 * A copy in plain JavaScript JSON form (integers as `number`, bytes as number arrays) for libraries that do
 * not know the lossless model, such as JSON Schema validators. Integers beyond 2^53 lose precision here, so
 * use it only for checks, never for values that are stored, hashed or compared.
 */
export function toPlainJson(value: JsonValue | undefined): unknown {
  return plainCopy(value, Number);
}

/**
 * A copy in plain JavaScript JSON form that rounds no integer: integers within 2^53 as `number`, larger ones as
 * decimal strings (standard MCP's `structuredContent`, docs/MCP_CLIENTS.md), bytes as number arrays.
 */
export function toStructuredJson(value: JsonValue | undefined): unknown {
  return plainCopy(value, exactInteger);
}

const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);

function exactInteger(value: bigint): number | string {
  return value >= -SAFE_MAX && value <= SAFE_MAX ? Number(value) : value.toString();
}

function plainCopy(value: JsonValue | undefined, integer: (value: bigint) => number | string): unknown {
  if (typeof value === "bigint") return integer(value);
  if (value instanceof Uint8Array) return Array.from(value);
  if (Array.isArray(value)) return value.map((item) => plainCopy(item, integer));
  if (isJsonObject(value)) {
    const plain: Record<string, unknown> = {};
    for (const key of Object.keys(value)) {
      if (value[key] !== undefined) setOwn(plain as JsonObject, key, plainCopy(value[key], integer) as JsonValue);
    }
    return plain;
  }
  return value;
}
