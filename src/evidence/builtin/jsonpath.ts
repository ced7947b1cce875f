import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { Path } from "jsonpath-rfc9535";
import parseJsonPath, { type JsonPathQuery } from "jsonpath-rfc9535/parser";
import { InternalError } from "../../core/errors.js";
import { isJsonObject, type JsonValue, toPlainJson } from "../../json/value.js";
import { JsonPathBudget, JsonPathLimitExceeded } from "./jsonpath-budget.js";
import { regexFunctions } from "./jsonpath-regex.js";

/**
 * The JSONPath dialect of the `json` provider: RFC 9535, as implemented by `jsonpath-rfc9535`.
 *
 * - Queries start with `$`; dot and bracket notation, wildcards, descendants (`..`), indexes (negative ones
 *   count from the end), slices, unions and filters (`?@.id == 1`, `?(@.id == 1)`) with the RFC functions
 *   `length`, `count`, `match`, `search` and `value`.
 * - `match` and `search` take I-Regexp patterns (RFC 9485) and run them in RE2 (jsonpath-regex.ts), never in a
 *   backtracking RegExp; a pattern that is not an I-Regexp makes them false.
 * - Evaluation has a step budget and a bound on the size of the answer (jsonpath-budget.ts), and `match`/`search`
 *   have limits of their own; reaching any of them ends the evaluation with `limit_exceeded`.
 * - A query that does not parse, or that calls an unknown function or a function with the wrong number of
 *   arguments, is invalid. The other well-typedness rules of RFC 9535 §2.4.3 are not enforced.
 * - Filters compare plain JavaScript numbers, so integers beyond 2^53 are approximated inside comparisons;
 *   the selected values themselves are returned exactly as they are in the document.
 * - Quirks of `jsonpath_lib` 0.3 (the reference's library) are not reproduced.
 */
export type JsonPathSelection =
  | { kind: "invalid" }
  | { kind: "limit_exceeded"; message: string }
  | { kind: "matches"; values: JsonValue[] };

const FUNCTION_ARITY = new Map([
  ["length", 1],
  ["count", 1],
  ["match", 2],
  ["search", 2],
  ["value", 1],
]);

/** Every node `expression` selects in `document`, in result order, with the document's exact (lossless) values. */
export function selectJsonPath(document: JsonValue, expression: string): JsonPathSelection {
  let query: JsonPathQuery;
  try {
    query = parseJsonPath(expression);
  } catch {
    return { kind: "invalid" };
  }
  if (!callsOnlyKnownFunctions(query)) return { kind: "invalid" };
  const matchedPaths: Path[] = [];
  try {
    evaluate(toPlainJson(document), query, (matchedPath) => matchedPaths.push(matchedPath));
  } catch (error) {
    if (error instanceof JsonPathLimitExceeded) return { kind: "limit_exceeded", message: error.message };
    return { kind: "invalid" };
  }
  return { kind: "matches", values: matchedPaths.map((matchedPath) => valueAt(document, matchedPath)) };
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

// ---------------------------------------------------------------------------------------------------------------
// Evaluation: the library's own evaluator, with RE2-backed `match` and `search` and a work budget
// ---------------------------------------------------------------------------------------------------------------

/*
 * `jsonpath-rfc9535` hard-wires `match`/`search` to a backtracking RegExp inside its public `exec`, which offers
 * no way to replace functions. Its evaluator (`visitQuery`) takes the function table from a context object, so
 * this module builds that context itself, as the library's `exec` does, with RE2 in place of RegExp. These are
 * the library's internal modules (1.3.x layout); the JSONPath tests fail loudly if a release moves them.
 *
 * The library has no hook for metering either. Two of its habits serve instead: every node it is going to visit
 * goes through `Stack.prototype.push` (each `visitQuery` call makes its own `Stack`), and it reads a query
 * node's `type` each time it evaluates that node. `meterQueuedNodes` wraps the one, `meterDispatch` the other.
 */
type FunctionTable = Record<string, unknown>;
interface EvaluationContext {
  cache: Map<string, unknown>;
  capturePaths: boolean;
  functions: FunctionTable;
  regexp: "i-regexp";
  stack: unknown;
}
type VisitQuery = (
  context: EvaluationContext,
  root: unknown,
  input: unknown,
  query: JsonPathQuery,
  onMatch: (value: unknown, path: Path) => void,
) => void;
/** A node queued for visiting; `path` is the shared empty array except in the top-level query. */
interface QueuedNode {
  path: readonly unknown[];
}
interface StackClass {
  new (): unknown;
  prototype: { push(node: QueuedNode): void };
}

const LIBRARY_ESM = path.join(
  path.dirname(createRequire(import.meta.url).resolve("jsonpath-rfc9535/package.json")),
  "dist",
  "esm",
);
const libraryModule = (relative: string) => import(pathToFileURL(path.join(LIBRARY_ESM, relative)).href);
const [queryModule, stackModule, countModule, lengthModule, valueModule] = await Promise.all([
  libraryModule("core/visitors/query.js"),
  libraryModule("utils/stack.js"),
  libraryModule("core/functions/count.js"),
  libraryModule("core/functions/length.js"),
  libraryModule("core/functions/value.js"),
]);
const visitQuery: VisitQuery = queryModule.default;
const Stack: StackClass = stackModule.Stack;
const LIBRARY_FUNCTIONS: FunctionTable = {
  count: countModule.default,
  length: lengthModule.default,
  value: valueModule.default,
};

/** The budget of the evaluation in progress (evaluations are synchronous: there is at most one). */
let runningBudget: JsonPathBudget | undefined;
meterQueuedNodes(Stack);

/** Calls `onMatch` with the path of each match, in result order; throws `JsonPathLimitExceeded` at a limit. */
function evaluate(document: unknown, query: JsonPathQuery, onMatch: (path: Path) => void): void {
  const budget = new JsonPathBudget();
  const context: EvaluationContext = {
    cache: new Map(),
    capturePaths: true,
    functions: { ...LIBRARY_FUNCTIONS, ...regexFunctions() },
    regexp: "i-regexp",
    stack: new Stack(),
  };
  meterDispatch(query, budget);
  runningBudget = budget;
  try {
    visitQuery(context, document, document, query, (value, matchedPath) => {
      budget.chargeResult(value);
      onMatch(matchedPath);
    });
  } finally {
    runningBudget = undefined;
  }
}

/**
 * Each queued node costs a step, plus one per key of its path, which the evaluator copies for it. This patches the
 * library's class for the whole thread (in the server, the `json` worker, where only this module uses it);
 * outside an evaluation it charges nothing.
 */
function meterQueuedNodes(stack: StackClass): void {
  const push = stack.prototype.push;
  stack.prototype.push = function meteredPush(this: unknown, node: QueuedNode): void {
    runningBudget?.charge(1 + node.path.length);
    push.call(this, node);
  };
}

/**
 * Each evaluation of a segment, selector or expression costs a step: the evaluator reads the node's `type` to
 * dispatch on it, so a filter is charged its size for every node it is tried on.
 */
function meterDispatch(node: unknown, budget: JsonPathBudget): void {
  if (typeof node !== "object" || node === null) return;
  for (const child of Object.values(node)) meterDispatch(child, budget);
  const { type } = node as { type?: unknown };
  if (typeof type !== "string") return;
  Object.defineProperty(node, "type", {
    enumerable: true,
    get() {
      budget.charge(1);
      return type;
    },
  });
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
  if (!key.includes("\\")) return key;
  return key.replace(NORMALIZED_ESCAPE, (_match, hex: string | undefined, character: string) =>
    hex === undefined ? (ESCAPED_CHARACTERS[character] ?? character) : String.fromCharCode(Number.parseInt(hex, 16)),
  );
}
