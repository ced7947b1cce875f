import { isJsonNumber, isJsonObject, isJsonScalar, type JsonValue, jsonEquals } from "../../json/value.js";
import type { EvidenceValue } from "../run/schema.js";
import type { Comparator } from "../spec/schema.js";
import type { TriState } from "../wire/common.js";
import { compareTemporal } from "./datetime.js";
import { compareDecimal, type Ordering } from "./decimal.js";

/*
 * Comparator semantics (engine §3). The direction is always "evidence OP expected": `greater_than` is E > X,
 * `contains` is "E contains X" and `in_set` is "E ∈ X".
 */

/**
 * Evaluates `comparator` on an evidence value. `expected === undefined` means the condition has no expected
 * value; `value === null` means the evidence carries no value. Provider errors are the caller's concern.
 */
export function evaluateComparator(
  comparator: Comparator,
  expected: JsonValue | undefined,
  value: EvidenceValue | null,
): TriState {
  if (comparator === "exists") return triState(value !== null);
  if (comparator === "not_exists") return triState(value === null);
  if (value === null || expected === undefined) return "Unknown";
  if (value.kind === "bytes") return compareBytes(comparator, value.value, expected);
  return compareJson(comparator, value.value, expected);
}

/** The JSON rules of engine §3.2, with E the evidence and X the expected value. */
export function compareJson(comparator: Comparator, evidence: JsonValue, expected: JsonValue): TriState {
  switch (comparator) {
    case "equals":
      return equality(evidence, expected, true);
    case "not_equals":
      return equality(evidence, expected, false);
    case "greater_than":
      return fromOrder(orderValues(evidence, expected), (order) => order > 0);
    case "greater_than_or_equal":
      return fromOrder(orderValues(evidence, expected), (order) => order >= 0);
    case "less_than":
      return fromOrder(orderValues(evidence, expected), (order) => order < 0);
    case "less_than_or_equal":
      return fromOrder(orderValues(evidence, expected), (order) => order <= 0);
    case "lex_greater_than":
      return fromOrder(orderStrings(evidence, expected), (order) => order > 0);
    case "lex_greater_than_or_equal":
      return fromOrder(orderStrings(evidence, expected), (order) => order >= 0);
    case "lex_less_than":
      return fromOrder(orderStrings(evidence, expected), (order) => order < 0);
    case "lex_less_than_or_equal":
      return fromOrder(orderStrings(evidence, expected), (order) => order <= 0);
    case "contains":
      return contains(evidence, expected);
    case "in_set":
      return inSet(evidence, expected);
    case "deep_equals":
      return deepEquality(evidence, expected, true);
    case "deep_not_equals":
      return deepEquality(evidence, expected, false);
    case "exists":
    case "not_exists":
      return "Unknown";
  }
}

/** Bytes evidence: X must be an array of integers 0..=255, and only `equals`/`not_equals` apply. */
function compareBytes(comparator: Comparator, bytes: Uint8Array, expected: JsonValue): TriState {
  const wanted = asBytes(expected);
  if (wanted === undefined) return "Unknown";
  const same = bytes.length === wanted.length && bytes.every((byte, index) => byte === wanted[index]);
  if (comparator === "equals") return triState(same);
  if (comparator === "not_equals") return triState(!same);
  return "Unknown";
}

/** Two numbers compare as decimals (1 == 1.0); anything else by structural equality, never Unknown. */
function equality(evidence: JsonValue, expected: JsonValue, wantEqual: boolean): TriState {
  if (isJsonNumber(evidence) && isJsonNumber(expected)) {
    return fromOrder(compareDecimal(evidence, expected), (order) => (order === 0) === wantEqual);
  }
  return triState(jsonEquals(evidence, expected) === wantEqual);
}

/** Numbers order as decimals; strings order only as dates; every other pairing is unordered. */
function orderValues(evidence: JsonValue, expected: JsonValue): Ordering | undefined {
  if (isJsonNumber(evidence) && isJsonNumber(expected)) return compareDecimal(evidence, expected);
  if (typeof evidence === "string" && typeof expected === "string") return compareTemporal(evidence, expected);
  return undefined;
}

function orderStrings(evidence: JsonValue, expected: JsonValue): Ordering | undefined {
  if (typeof evidence !== "string" || typeof expected !== "string") return undefined;
  return compareCodePoints(evidence, expected);
}

function contains(evidence: JsonValue, expected: JsonValue): TriState {
  if (typeof evidence === "string" && typeof expected === "string") return triState(evidence.includes(expected));
  const haystack = asArray(evidence);
  const needles = asArray(expected);
  if (haystack === undefined || needles === undefined) return "Unknown";
  return triState(needles.every((needle) => haystack.some((item) => jsonEquals(item, needle))));
}

function inSet(evidence: JsonValue, expected: JsonValue): TriState {
  const members = asArray(expected);
  if (members === undefined || !isJsonScalar(evidence)) return "Unknown";
  return triState(members.some((member) => jsonEquals(member, evidence)));
}

function deepEquality(evidence: JsonValue, expected: JsonValue, wantEqual: boolean): TriState {
  const bothArrays = asArray(evidence) !== undefined && asArray(expected) !== undefined;
  if (!bothArrays && !(isJsonObject(evidence) && isJsonObject(expected))) return "Unknown";
  return triState(jsonEquals(evidence, expected) === wantEqual);
}

/**
 * Orders strings by Unicode code point, which is Rust's (UTF-8 byte) order. UTF-16 code units disagree only
 * where a surrogate (part of a character above U+FFFF) meets a unit in U+E000..U+FFFF, so those are re-ranked.
 */
export function compareCodePoints(a: string, b: string): Ordering {
  const length = Math.min(a.length, b.length);
  for (let index = 0; index < length; index++) {
    const x = a.charCodeAt(index);
    const y = b.charCodeAt(index);
    if (x !== y) return codePointRank(x) < codePointRank(y) ? -1 : 1;
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}

function codePointRank(unit: number): number {
  if (unit >= 0xe000) return unit - 0x800;
  if (unit >= 0xd800) return unit + 0x2000;
  return unit;
}

/** Arrays in the JSON sense: byte strings serialize as arrays of integers. */
function asArray(value: JsonValue): JsonValue[] | undefined {
  if (Array.isArray(value)) return value;
  if (value instanceof Uint8Array) return Array.from(value, (byte) => BigInt(byte));
  return undefined;
}

function asBytes(value: JsonValue): Uint8Array | undefined {
  if (value instanceof Uint8Array) return value;
  if (!Array.isArray(value)) return undefined;
  const valid = value.every((item) => typeof item === "bigint" && item >= 0n && item <= 255n);
  return valid ? Uint8Array.from(value as bigint[], Number) : undefined;
}

function fromOrder(order: Ordering | undefined, holds: (order: Ordering) => boolean): TriState {
  return order === undefined ? "Unknown" : triState(holds(order));
}

function triState(value: boolean): TriState {
  return value ? "True" : "False";
}
