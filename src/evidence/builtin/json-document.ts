import { JsonParseError } from "../../core/errors.js";
import { parseJsonBytes } from "../../json/parse.js";
import type { JsonObject, JsonValue } from "../../json/value.js";
import { selectJsonPath } from "./jsonpath.js";
import { yamlToJson } from "./yaml-to-json.js";

/*
 * What the `json` provider does with the bytes of a file: parse them (strict JSON, or YAML) and answer with the
 * whole document or what a JSONPath selects. Synchronous and self-contained, so that it can run in the
 * provider's worker thread (json-worker.ts), away from the server's event loop.
 */

export interface DocumentRequest {
  content: Uint8Array;
  format: "json" | "yaml";
  /** The file's path relative to the root, for error details. */
  file: string;
  jsonpath: string | undefined;
}

/** An in-band failure of the `path` check: the result's `error`. */
export interface PathCheckError {
  code: string;
  message: string;
  details: JsonObject | null;
}

export type DocumentAnswer = { kind: "value"; value: JsonValue } | ({ kind: "failure" } & PathCheckError);

/** `onParsed` is called between parsing and evaluating the JSONPath, if there is one. */
export function answerDocument(request: DocumentRequest, onParsed: () => void = () => {}): DocumentAnswer {
  const document = parseContent(request);
  if (document.kind === "failure") return document;
  if (request.jsonpath === undefined) return document;
  onParsed();
  return selectAnswer(document.value, request.jsonpath);
}

function parseContent({ content, format, file }: DocumentRequest): DocumentAnswer {
  try {
    return { kind: "value", value: format === "yaml" ? yamlToJson(UTF8.decode(content)) : parseJsonBytes(content) };
  } catch (error) {
    if (format === "yaml") return failure("invalid_yaml", "invalid yaml", { file });
    if (error instanceof JsonParseError) return failure("invalid_json", "invalid json", { file });
    throw error;
  }
}

/** Strict UTF-8; a leading byte-order mark is dropped, as libyaml does. */
const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** No match is an error, one match is the answer, several are an array of the matches in result order. */
function selectAnswer(document: JsonValue, jsonpath: string): DocumentAnswer {
  const selection = selectJsonPath(document, jsonpath);
  if (selection.kind === "invalid") return failure("invalid_jsonpath", "invalid jsonpath", { jsonpath });
  if (selection.kind === "limit_exceeded") return failure("jsonpath_limit_exceeded", selection.message, { jsonpath });
  const [first, ...others] = selection.values;
  if (first === undefined) return failure("jsonpath_not_found", `jsonpath not found: ${jsonpath}`, { jsonpath });
  return { kind: "value", value: others.length === 0 ? first : selection.values };
}

function failure(code: string, message: string, details: JsonObject): DocumentAnswer {
  return { kind: "failure", code, message, details };
}
