import {
  type Alias,
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  parseAllDocuments,
  type Scalar,
  visit,
} from "yaml";
import { I64_MAX, I64_MIN, type JsonObject, type JsonValue, setOwn, U64_MAX } from "../../json/value.js";

/*
 * YAML → the lossless JSON model, resolving scalars as the reference (serde_yaml 0.9 into serde_json) does, so
 * the same file yields the same evidence and the same hashes.
 */

/** Nesting limit of serde_yaml (its `remaining_depth`). */
const MAX_YAML_DEPTH = 128;
/** Bound on nodes copied through aliases, against "billion laughs" documents. */
const MAX_YAML_ALIAS_NODES = 1_000_000;

/** The failsafe schema keeps every scalar a string; `scalarToJson` resolves them the reference's way. */
const YAML_PARSE_OPTIONS = { version: "1.2", schema: "failsafe", uniqueKeys: false, merge: false } as const;

class YamlConversionError extends Error {}

/**
 * One document, or none (an empty or comment-only stream is `null`); more than one, or anything the reference
 * refuses, throws.
 */
export function yamlToJson(text: string): JsonValue {
  const documents = parseAllDocuments(text, YAML_PARSE_OPTIONS);
  if ("empty" in documents) {
    if (documents.errors.length > 0) throw new YamlConversionError("invalid yaml stream");
    return null;
  }
  const [document, ...others] = documents;
  if (document === undefined || others.length > 0) throw new YamlConversionError("more than one yaml document");
  if (document.errors.length > 0) throw new YamlConversionError("invalid yaml document");
  return new YamlConverter(document).convert(document.contents, 0, false);
}

class YamlConverter {
  private readonly aliasTargets: Map<Alias, unknown>;
  private aliasNodesLeft = MAX_YAML_ALIAS_NODES;

  constructor(document: Document.Parsed) {
    this.aliasTargets = aliasTargetsOf(document);
  }

  convert(node: unknown, depth: number, viaAlias: boolean): JsonValue {
    if (viaAlias && --this.aliasNodesLeft < 0) throw new YamlConversionError("too many nodes through aliases");
    if (node === null || node === undefined) return null;
    if (isAlias(node)) return this.convert(this.targetOf(node), depth, true);
    if (isScalar(node)) return scalarToJson(node);
    if (depth >= MAX_YAML_DEPTH) throw new YamlConversionError("yaml nesting too deep");
    if (isSeq(node)) return node.items.map((item) => this.convert(item, depth + 1, viaAlias));
    if (!isMap(node)) throw new YamlConversionError("unsupported yaml node");
    const object: JsonObject = {};
    for (const pair of node.items) setOwn(object, this.keyOf(pair.key), this.convert(pair.value, depth + 1, viaAlias));
    return object;
  }

  /** serde_json reads a key as the scalar's text whatever it looks like (`1: a` is `{"1":"a"}`). */
  private keyOf(node: unknown): string {
    const target = isAlias(node) ? this.targetOf(node) : node;
    if (target === null || target === undefined) return "";
    if (isScalar(target)) return String(target.value);
    throw new YamlConversionError("yaml mapping keys must be scalars");
  }

  private targetOf(alias: Alias): unknown {
    const target = this.aliasTargets.get(alias);
    if (target === undefined) throw new YamlConversionError(`unknown yaml anchor: ${alias.source}`);
    return target;
  }
}

/** Each alias's node: the last node before it carrying its anchor (one pass; `Alias.resolve` rescans per call). */
function aliasTargetsOf(document: Document.Parsed): Map<Alias, unknown> {
  const anchored = new Map<string, unknown>();
  const targets = new Map<Alias, unknown>();
  visit(document, {
    Node(_key, node) {
      if (isAlias(node)) targets.set(node, anchored.get(node.source));
      else if (node.anchor !== undefined) anchored.set(node.anchor, node);
    },
  });
  return targets;
}

const CORE_TAG = "tag:yaml.org,2002:";
const SIGNED_DECIMAL = /^[+-]?[0-9]+$/;
const RUST_DECIMAL_FLOAT = String.raw`(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?`;
/** What Rust's `f64::from_str` accepts, and its finite subset. */
const RUST_FLOAT = new RegExp(`^[+-]?(?:${RUST_DECIMAL_FLOAT}|inf|infinity|nan)$`, "i");
const RUST_FINITE_FLOAT = new RegExp(`^[+-]?${RUST_DECIMAL_FLOAT}$`);
const INFINITIES = new Set([".inf", ".Inf", ".INF"]);
const NANS = new Set([".nan", ".NaN", ".NAN"]);
const RADIXES = [
  { prefix: "0x", digits: /^[0-9a-fA-F]+$/ },
  { prefix: "0o", digits: /^[0-7]+$/ },
  { prefix: "0b", digits: /^[01]+$/ },
];

function scalarToJson(node: Scalar): JsonValue {
  const text = String(node.value);
  if (node.tag !== undefined) return taggedScalar(node.tag, text);
  return node.type === "PLAIN" ? plainScalar(text) : text;
}

/** Explicit core tags parse strictly (a mismatch is an error); any other tag leaves the text a string. */
function taggedScalar(tag: string, text: string): JsonValue {
  switch (tag) {
    case `${CORE_TAG}bool`:
      if (text === "true" || text === "false") return text === "true";
      break;
    case `${CORE_TAG}int`: {
      const value = SIGNED_DECIMAL.test(text) ? BigInt(text) : undefined;
      if (value !== undefined && value >= I64_MIN && value <= I64_MAX) return value;
      break;
    }
    case `${CORE_TAG}float`:
      if (RUST_FLOAT.test(text)) return finiteOrNull(Number(text));
      break;
    case `${CORE_TAG}null`:
      if (text === "~" || text === "null") return null;
      break;
    default:
      return text;
  }
  throw new YamlConversionError(`invalid ${tag} scalar`);
}

/** serde_yaml's `visit_untagged_str`, step by step. */
function plainScalar(text: string): JsonValue {
  if (text === "" || text === "~" || text === "null") return null;
  if (text === "true" || text === "false") return text === "true";
  const radixInteger = radixIntegerOf(text);
  if (radixInteger !== undefined) return radixInteger;
  if (hasLeadingZeros(text)) return text;
  if (SIGNED_DECIMAL.test(text)) return integerOrFloat(BigInt(text));
  if (INFINITIES.has(text.replace(/^\++/, "")) || INFINITIES.has(text.replace(/^-/, "")) || NANS.has(text)) {
    return null;
  }
  if (RUST_FINITE_FLOAT.test(text) && Number.isFinite(Number(text))) return Number(text);
  return text;
}

/** `0x`/`0o`/`0b` integers, optionally signed; out of u64 (or, negative, of i64) range they are not integers. */
function radixIntegerOf(text: string): bigint | undefined {
  for (const { prefix, digits } of RADIXES) {
    const negative = text.startsWith(`-${prefix}`);
    const unsigned = negative ? text.slice(prefix.length + 1) : unsignedRadixDigits(text, prefix);
    if (unsigned === undefined || !digits.test(unsigned)) continue;
    const magnitude = BigInt(`${prefix}${unsigned}`);
    if (negative ? -magnitude >= I64_MIN : magnitude <= U64_MAX) return negative ? -magnitude : magnitude;
  }
  return undefined;
}

/** After an optionally `+`-signed prefix, Rust's `u64::from_str_radix` accepts one more optional `+`. */
function unsignedRadixDigits(text: string, prefix: string): string | undefined {
  if (text.startsWith(prefix)) return text.slice(prefix.length).replace(/^\+/, "");
  if (text.startsWith(`+${prefix}`)) return text.slice(prefix.length + 1).replace(/^\+/, "");
  return undefined;
}

/** `007`, `-00` and the like: strings in YAML 1.2. */
function hasLeadingZeros(text: string): boolean {
  const unsigned = text.replace(/^[-+]+/, "");
  return unsigned.length > 1 && unsigned.startsWith("0") && /^[0-9]+$/.test(unsigned.slice(1));
}

/** Integers within i64/u64 stay exact; larger ones become floats, as the JSON parser does. */
function integerOrFloat(value: bigint): bigint | number {
  return value >= I64_MIN && value <= U64_MAX ? value : Number(value);
}

/** serde_json has no NaN or infinity: such floats become `null`. */
function finiteOrNull(value: number): number | null {
  return Number.isFinite(value) ? value : null;
}
