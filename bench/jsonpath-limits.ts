import { answerDocument, type DocumentRequest } from "../src/evidence/builtin/json-document.js";
import { JsonWorkerClient } from "../src/evidence/builtin/json-worker-client.js";

/*
 * `npx tsx bench/jsonpath-limits.ts`: how long the `json` provider takes to answer hostile and ordinary JSONPath
 * queries over documents up to its default max_bytes (1 MiB), and which limit ends the hostile ones. The numbers
 * in docs/providers-json.md come from here. Each row parses the document and evaluates the query in this thread;
 * the last rows go through the worker, whose time limit ends what the step budget cannot count.
 */

const MiB = 1_048_576;

/** A JSON array of `unit` repeated to fill `bytes`, optionally nested `depth` objects deep (`{"a": …}`). */
function document(unit: string, bytes: number, depth = 0): Uint8Array {
  const count = Math.floor((bytes - 1 - 6 * depth) / (unit.length + 1));
  return Buffer.from(`${'{"a":'.repeat(depth)}[${Array(count).fill(unit).join(",")}]${"}".repeat(depth)}`);
}

const RECORD = '{"id":12345,"name":"service-a","status":"passed","tags":["a","b"],"meta":{"owner":"team","ok":true}}';
const DOCUMENTS = {
  "4,000 objects (32 KB)": document('{"x":1}', 4_000 * 8),
  "1 MiB of objects": document('{"x":1}', MiB),
  "1 MiB of records": document(RECORD, MiB),
  "1 MiB of numbers": document("0", MiB),
  "1 MiB, 126 levels deep": document("0", MiB, 126),
};
type DocumentName = keyof typeof DOCUMENTS;

const ROWS: Array<[DocumentName, string]> = [
  ["4,000 objects (32 KB)", "$[?count($..*) > 0]"],
  ["1 MiB of objects", "$[?count($..*) > 0]"],
  ["1 MiB of objects", "$[?$..x]"],
  ["1 MiB, 126 levels deep", "$..[?@..x]"],
  ["1 MiB, 126 levels deep", "$..*"],
  ["1 MiB, 126 levels deep", "$..*..*"],
  ["1 MiB of objects", "$[?count(@..*) > 0]"],
  ["1 MiB of objects", "$[?@.x == 1]"],
  ["1 MiB of records", "$..*"],
  ["1 MiB of records", "$[?@.status == 'passed'].name"],
  ["1 MiB of numbers", "$..*"],
];

const request = (name: DocumentName, jsonpath: string): DocumentRequest => ({
  content: DOCUMENTS[name],
  format: "json",
  file: "bench.json",
  jsonpath,
});

function outcome(answer: ReturnType<typeof answerDocument>): string {
  if (answer.kind === "failure") return `${answer.code}: ${answer.message}`;
  return Array.isArray(answer.value) ? `${answer.value.length} matches` : "1 match";
}

console.log("| document | query | ms | answer |\n|---|---|---|---|");
for (const [name, jsonpath] of ROWS) {
  const started = performance.now();
  const answer = answerDocument(request(name, jsonpath));
  console.log(`| ${name} | \`${jsonpath}\` | ${(performance.now() - started).toFixed(0)} | ${outcome(answer)} |`);
}
const worker = new JsonWorkerClient();
for (const [name, jsonpath] of [["1 MiB of objects", "$[?$ == $]"]] as const) {
  const started = performance.now();
  const answer = await worker.answer(request(name, jsonpath));
  console.log(
    `| ${name} | \`${jsonpath}\` (worker) | ${(performance.now() - started).toFixed(0)} | ${outcome(answer)} |`,
  );
}
