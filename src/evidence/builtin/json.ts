import { type FileHandle, open, realpath, stat } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { InvalidInputError } from "../../core/errors.js";
import type { EvidenceResult } from "../../core/run/schema.js";
import type { EvidenceQuery } from "../../core/spec/schema.js";
import { formatPath } from "../../core/wire/common.js";
import { isJsonObject, type JsonObject, type JsonValue } from "../../json/value.js";
import { canonicalJson } from "../../json/write.js";
import {
  type EvidenceProvider,
  EvidenceProviderFailure,
  errorEvidence,
  jsonEvidence,
  type ResultExtras,
} from "../provider.js";
import type { DocumentRequest } from "./json-document.js";
import { JsonWorkerClient } from "./json-worker-client.js";
import { resolveWithinRoot } from "./rooted-path.js";

/*
 * The built-in `json` evidence provider (evidence §1.4): reads a JSON or YAML file below a configured root and
 * answers with the whole document or the value a JSONPath selects. Every problem with the question or the file
 * is an in-band error result; only an unknown check id fails the query. Files are found and read here; parsing
 * and JSONPath run in a worker thread (json-worker-client.ts).
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
const CONTENT_TYPES = { json: "application/json", yaml: "application/yaml" } as const;

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

/** One worker thread serves every `json` provider of the process. */
const documentWorker = new JsonWorkerClient();

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
      const format = isYamlFile(file.absolute) ? "yaml" : "json";
      if (format === "yaml" && !this.config.allow_yaml) {
        throw new PathCheckFailure("yaml_disabled", "yaml parsing is disabled", { file: file.relative });
      }
      const answer = await answerInWorker({ content, format, file: file.relative, jsonpath: params.jsonpath });
      return jsonEvidence(answer, { ...located, content_type: CONTENT_TYPES[format] });
    } catch (error) {
      if (!(error instanceof PathCheckFailure)) throw error;
      return errorEvidence({ code: error.code, message: error.message, details: error.details }, located);
    }
  }
}

async function answerInWorker(request: DocumentRequest): Promise<JsonValue> {
  const answer = await documentWorker.answer(request);
  if (answer.kind === "failure") throw new PathCheckFailure(answer.code, answer.message, answer.details);
  return answer.value;
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

// ---------------------------------------------------------------------------------------------------------------
// Files: containment and bounded reads
// ---------------------------------------------------------------------------------------------------------------

const READ_CHUNK_BYTES = 65_536;

/** Resolves `file` below `root` (rooted-path.ts): outside the root, missing and existing files look the same. */
async function resolveBelowRoot(root: string, file: string): Promise<RootedFile> {
  if (file === "") throw new PathCheckFailure("path_missing", "json file path is empty");
  if (path.isAbsolute(file)) {
    throw new PathCheckFailure("absolute_path_forbidden", "json file path must be relative to the configured root", {
      file,
    });
  }
  const resolution = await resolveWithinRoot(root, file);
  if (resolution.kind === "unresolvable") {
    throw new PathCheckFailure("file_not_found", "unable to resolve json file", { file });
  }
  if (resolution.kind === "outside")
    throw new PathCheckFailure("path_outside_root", "json file path escapes root", { file });
  if (resolution.relative === "") throw new PathCheckFailure("path_invalid", "json file path resolves to empty path");
  return { absolute: resolution.absolute, relative: resolution.relative };
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

/** `.yaml`/`.yml` in any ASCII case (without the `u` flag, `i` never folds non-ASCII letters onto ASCII ones). */
const YAML_EXTENSION = /^\.ya?ml$/i;

function isYamlFile(absolute: string): boolean {
  return YAML_EXTENSION.test(path.extname(absolute));
}
