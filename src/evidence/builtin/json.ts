import { type FileHandle, open, realpath, stat } from "node:fs/promises";
import path from "node:path";
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
import { z } from "zod";
import { InvalidInputError, JsonParseError } from "../../core/errors.js";
import type { EvidenceResult } from "../../core/run/schema.js";
import type { EvidenceQuery } from "../../core/spec/schema.js";
import { formatPath } from "../../core/wire/common.js";
import { parseJsonBytes } from "../../json/parse.js";
import { I64_MAX, I64_MIN, isJsonObject, type JsonObject, type JsonValue, setOwn, U64_MAX } from "../../json/value.js";
import { canonicalJson } from "../../json/write.js";
import {
  type EvidenceProvider,
  EvidenceProviderFailure,
  errorEvidence,
  jsonEvidence,
  type ResultExtras,
} from "../provider.js";
import { selectJsonPath } from "./jsonpath.js";

/*
 * The built-in `json` evidence provider (evidence §1.4): reads a JSON or YAML file below a configured root and
 * answers with the whole document or the value a JSONPath selects. Every problem with the question or the file
 * is an in-band error result; only an unknown check id fails the query.
 */

// ---------------------------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------------------------

export const JSON_PROVIDER_ID = "json";
export const DEFAULT_JSON_MAX_BYTES = 1_048_576;

const ROOT_REQUIRED = "json provider requires config.root";
const ROOT_ID_REQUIRED = "json provider requires config.root_id";
const ROOT_ID_TOO_LONG = "json provider root_id exceeds 64 characters";
const ROOT_ID_CHARSET = "json provider root_id must be lowercase ascii, digits, '-' or '_'";
const REFERENCE_MESSAGES = new Set([ROOT_REQUIRED, ROOT_ID_REQUIRED, ROOT_ID_TOO_LONG, ROOT_ID_CHARSET]);
const MAX_ROOT_ID_BYTES = 64;
const ROOT_ID_PATTERN = /^[a-z0-9_-]*$/;

function requiredField(message: string) {
  return (issue: { input?: unknown }) => (issue.input === undefined ? message : undefined);
}

function rootIdProblem(rootId: string): string | undefined {
  if (rootId === "") return ROOT_ID_REQUIRED;
  if (Buffer.byteLength(rootId) > MAX_ROOT_ID_BYTES) return ROOT_ID_TOO_LONG;
  if (!ROOT_ID_PATTERN.test(rootId)) return ROOT_ID_CHARSET;
  return undefined;
}

/** `max_bytes + 1` bytes are read, so the limit must leave room for one more as a safe integer. */
const LARGEST_MAX_BYTES = Number.MAX_SAFE_INTEGER - 1;

const MaxBytes = z
  .union([z.bigint(), z.number().int()])
  .transform((value) => Number(value))
  .pipe(z.number().min(0).max(LARGEST_MAX_BYTES));

/** The TOML table `config = { root, root_id, max_bytes, allow_yaml }` of `[[providers]] name = "json"`. */
export const JsonProviderConfig = z.object({
  root: z.string({ error: requiredField(ROOT_REQUIRED) }).min(1, { error: ROOT_REQUIRED }),
  root_id: z.string({ error: requiredField(ROOT_ID_REQUIRED) }).superRefine((rootId, context) => {
    const problem = rootIdProblem(rootId);
    if (problem !== undefined) context.addIssue({ code: "custom", message: problem });
  }),
  max_bytes: MaxBytes.default(DEFAULT_JSON_MAX_BYTES),
  allow_yaml: z.boolean().default(true),
});
export type JsonProviderConfig = z.output<typeof JsonProviderConfig>;
export type JsonProviderConfigInput = z.input<typeof JsonProviderConfig>;

/**
 * Validates the configuration and canonicalizes the root (realpath, relative to `options.cwd`, default the
 * process's working directory). Failures throw `InvalidInputError` with the reference's messages.
 */
export async function createJsonProvider(
  config: JsonProviderConfigInput,
  options: { cwd?: string } = {},
): Promise<EvidenceProvider> {
  const settings = validateConfig(config);
  const root = await canonicalRoot(settings.root, options.cwd ?? process.cwd());
  return new JsonProvider({ ...settings, root });
}

function validateConfig(config: unknown): JsonProviderConfig {
  const result = JsonProviderConfig.safeParse(config);
  if (result.success) return result.data;
  const messages = result.error.issues.map((issue) =>
    REFERENCE_MESSAGES.has(issue.message) ? issue.message : `${formatPath("config", issue.path)}: ${issue.message}`,
  );
  throw new InvalidInputError(messages.join("; "), { issues: messages });
}

async function canonicalRoot(root: string, cwd: string): Promise<string> {
  let canonical: string;
  try {
    canonical = await realpath(path.isAbsolute(root) ? root : joinUnnormalized(cwd, root));
  } catch {
    throw new InvalidInputError("json provider root does not exist");
  }
  const info = await stat(canonical).catch(() => undefined);
  if (info?.isDirectory() !== true) throw new InvalidInputError("json provider root is not a directory");
  return canonical;
}

/**
 * Joins without resolving `..` lexically: the kernel's realpath must see `link/..` as written, so that `..` after
 * a symlink climbs out of the link's target as it does for the reference (Rust `canonicalize`).
 */
function joinUnnormalized(base: string, relative: string): string {
  return base.endsWith(path.sep) ? `${base}${relative}` : `${base}${path.sep}${relative}`;
}

// ---------------------------------------------------------------------------------------------------------------
// The provider
// ---------------------------------------------------------------------------------------------------------------

const PATH_CHECK = "path";
const JSON_CONTENT_TYPE = "application/json";
const YAML_CONTENT_TYPE = "application/yaml";

/** An in-band failure of the `path` check: reported as the result's `error`, never thrown to the engine. */
class PathCheckFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details: JsonObject | null = null,
  ) {
    super(message);
  }
}

interface PathCheckParams {
  file: string;
  jsonpath: string | undefined;
}

/** A file below the root: its canonical absolute path and its POSIX path relative to the root. */
interface RootedFile {
  absolute: string;
  relative: string;
}

interface ParsedDocument {
  document: JsonValue;
  contentType: string;
}

class JsonProvider implements EvidenceProvider {
  readonly providerId = JSON_PROVIDER_ID;

  constructor(private readonly config: JsonProviderConfig) {}

  async query(query: EvidenceQuery): Promise<EvidenceResult> {
    if (query.check_id !== PATH_CHECK) throw new EvidenceProviderFailure("unsupported json check");
    let located: ResultExtras = {};
    try {
      const params = readParams(query.params);
      const file = await resolveBelowRoot(this.config.root, params.file);
      located = locationOf(this.config.root_id, file.relative);
      const content = await readAtMost(file, this.config.max_bytes);
      const { document, contentType } = parseDocument(file, content, this.config.allow_yaml);
      const value = params.jsonpath === undefined ? document : selectValue(document, params.jsonpath);
      return jsonEvidence(value, { ...located, content_type: contentType });
    } catch (error) {
      if (!(error instanceof PathCheckFailure)) throw error;
      return errorEvidence({ code: error.code, message: error.message, details: error.details }, located);
    }
  }
}

function locationOf(rootId: string, relative: string): ResultExtras {
  return {
    evidence_ref: { uri: `dg+file://${rootId}/${relative}` },
    evidence_anchor: {
      anchor_type: "file_path_rooted",
      anchor_value: canonicalJson({ path: relative, root_id: rootId }),
    },
  };
}

function readParams(params: JsonValue | undefined): PathCheckParams {
  if (params === undefined || params === null) {
    throw new PathCheckFailure("params_missing", "json check requires params");
  }
  if (!isJsonObject(params)) throw new PathCheckFailure("params_invalid", "json params must be an object");
  const file = ownValue(params, "file");
  if (file === undefined) throw new PathCheckFailure("params_missing", "missing file param");
  if (typeof file !== "string") throw new PathCheckFailure("params_invalid", "file param must be a string");
  const jsonpath = ownValue(params, "jsonpath");
  if (jsonpath !== undefined && typeof jsonpath !== "string") {
    throw new PathCheckFailure("params_invalid", "jsonpath param must be a string");
  }
  return { file, jsonpath };
}

function ownValue(object: JsonObject, key: string): JsonValue | undefined {
  return Object.hasOwn(object, key) ? object[key] : undefined;
}

function selectValue(document: JsonValue, jsonpath: string): JsonValue {
  const selection = selectJsonPath(document, jsonpath);
  if (selection.kind === "invalid") {
    throw new PathCheckFailure("invalid_jsonpath", "invalid jsonpath", { jsonpath });
  }
  const [first, ...others] = selection.values;
  if (first === undefined) {
    throw new PathCheckFailure("jsonpath_not_found", `jsonpath not found: ${jsonpath}`, { jsonpath });
  }
  return others.length === 0 ? first : selection.values;
}

// ---------------------------------------------------------------------------------------------------------------
// Files: containment and bounded reads
// ---------------------------------------------------------------------------------------------------------------

const READ_CHUNK_BYTES = 65_536;

/** Resolves `file` with the kernel's realpath (following every symlink) and requires the result below `root`. */
async function resolveBelowRoot(root: string, file: string): Promise<RootedFile> {
  if (file === "") throw new PathCheckFailure("path_missing", "json file path is empty");
  if (path.isAbsolute(file)) {
    throw new PathCheckFailure("absolute_path_forbidden", "json file path must be relative to the configured root", {
      file,
    });
  }
  let absolute: string;
  try {
    absolute = await realpath(joinUnnormalized(root, file));
  } catch {
    throw new PathCheckFailure("file_not_found", "unable to resolve json file", { file });
  }
  const relative = relativeBelow(root, absolute);
  if (relative === undefined) throw new PathCheckFailure("path_outside_root", "json file path escapes root", { file });
  if (relative === "") throw new PathCheckFailure("path_invalid", "json file path resolves to empty path");
  return { absolute, relative };
}

/** Component-wise containment: `/root2/x` is not below `/root`. Returns "" for the root itself. */
function relativeBelow(root: string, absolute: string): string | undefined {
  if (absolute === root) return "";
  const prefix = root.endsWith(path.sep) ? root : `${root}${path.sep}`;
  if (!absolute.startsWith(prefix)) return undefined;
  return absolute.slice(prefix.length).split(path.sep).filter(Boolean).join("/");
}

/** Reads at most `maxBytes + 1` bytes, so an oversized file is detected without reading all of it. */
async function readAtMost(file: RootedFile, maxBytes: number): Promise<Buffer> {
  const handle = await openForReading(file);
  let content: Buffer;
  try {
    content = await readPrefix(handle, maxBytes + 1);
  } catch {
    throw new PathCheckFailure("file_read_failed", "unable to read json file", { file: file.relative });
  } finally {
    await handle.close();
  }
  if (content.length > maxBytes) {
    throw new PathCheckFailure("size_limit_exceeded", "json file exceeds size limit", {
      file: file.relative,
      max_bytes: BigInt(maxBytes),
      actual_bytes: BigInt(content.length),
    });
  }
  return content;
}

async function openForReading(file: RootedFile): Promise<FileHandle> {
  try {
    return await open(file.absolute, "r");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code === "ENOENT" ? "file_not_found" : "file_open_failed";
    throw new PathCheckFailure(code, "unable to open json file", { file: file.relative });
  }
}

async function readPrefix(handle: FileHandle, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  while (total < limit) {
    const chunk = Buffer.alloc(Math.min(limit - total, READ_CHUNK_BYTES));
    const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
    if (bytesRead === 0) break;
    chunks.push(chunk.subarray(0, bytesRead));
    total += bytesRead;
  }
  return Buffer.concat(chunks, total);
}

// ---------------------------------------------------------------------------------------------------------------
// Parsing: strict JSON, or YAML by the resolved file's extension
// ---------------------------------------------------------------------------------------------------------------

function parseDocument(file: RootedFile, content: Uint8Array, allowYaml: boolean): ParsedDocument {
  if (!isYamlFile(file.absolute)) return { document: parseJsonContent(content, file), contentType: JSON_CONTENT_TYPE };
  if (!allowYaml) throw new PathCheckFailure("yaml_disabled", "yaml parsing is disabled", { file: file.relative });
  return { document: parseYamlContent(content, file), contentType: YAML_CONTENT_TYPE };
}

/** `.yaml`/`.yml` in any ASCII case (without the `u` flag, `i` never folds non-ASCII letters onto ASCII ones). */
const YAML_EXTENSION = /^\.ya?ml$/i;

function isYamlFile(absolute: string): boolean {
  return YAML_EXTENSION.test(path.extname(absolute));
}

function parseJsonContent(content: Uint8Array, file: RootedFile): JsonValue {
  try {
    return parseJsonBytes(content);
  } catch (error) {
    if (error instanceof JsonParseError)
      throw new PathCheckFailure("invalid_json", "invalid json", { file: file.relative });
    throw error;
  }
}

function parseYamlContent(content: Uint8Array, file: RootedFile): JsonValue {
  try {
    return yamlToJson(UTF8.decode(content));
  } catch {
    throw new PathCheckFailure("invalid_yaml", "invalid yaml", { file: file.relative });
  }
}

/** Strict UTF-8; a leading byte-order mark is dropped, as libyaml does. */
const UTF8 = new TextDecoder("utf-8", { fatal: true });

// ---------------------------------------------------------------------------------------------------------------
// YAML → the lossless JSON model, resolving scalars as the reference (serde_yaml 0.9 into serde_json) does
// ---------------------------------------------------------------------------------------------------------------

/** Nesting limit of serde_yaml (its `remaining_depth`). */
const MAX_YAML_DEPTH = 128;
/** Bound on nodes copied through aliases, against "billion laughs" documents. */
const MAX_YAML_ALIAS_NODES = 1_000_000;

/** The failsafe schema keeps every scalar a string; `scalarToJson` resolves them the reference's way. */
const YAML_PARSE_OPTIONS = { version: "1.2", schema: "failsafe", uniqueKeys: false, merge: false } as const;

class YamlConversionError extends Error {}

/** One document, or none (an empty or comment-only stream is `null`); more than one is an error. */
function yamlToJson(text: string): JsonValue {
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
