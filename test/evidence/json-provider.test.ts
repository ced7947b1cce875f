import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InvalidInputError } from "../../src/core/errors.js";
import type { EvidenceContext } from "../../src/core/run/evidence.js";
import type { EvidenceResult } from "../../src/core/run/schema.js";
import type { EvidenceQuery } from "../../src/core/spec/schema.js";
import { createJsonProvider, JsonProviderConfig } from "../../src/evidence/builtin/json.js";
import type { DocumentRequest } from "../../src/evidence/builtin/json-document.js";
import { JsonWorkerClient } from "../../src/evidence/builtin/json-worker-client.js";
import { selectJsonPath } from "../../src/evidence/builtin/jsonpath.js";
import { MAX_JSONPATH_RESULT_NODES, MAX_JSONPATH_STEPS } from "../../src/evidence/builtin/jsonpath-budget.js";
import { type EvidenceProvider, EvidenceProviderFailure } from "../../src/evidence/provider.js";
import type { JsonValue } from "../../src/json/value.js";

const ROOT_ID = "evidence-root";
const CONTEXT: EvidenceContext = {
  tenant_id: 1n,
  namespace_id: 1n,
  run_id: "run-1",
  scenario_id: "scenario-1",
  stage_id: "stage-1",
  trigger_id: "trigger-1",
  trigger_time: { kind: "logical", value: 1n },
  correlation_id: null,
};

const DOCUMENT = `{
  "big": 18446744073709551615,
  "negative": -9223372036854775808,
  "ratio": 1.5,
  "nothing": null,
  "nested": {"value": "ok"},
  "items": [{"id": 1, "ok": true}, {"id": 2, "ok": false}, {"id": 3, "ok": true}],
  "one": [{"id": 7}],
  "odd keys": {"it's": "quote", "line\\nbreak": "newline"}
}`;

/** 4,000 records (32 KB): a filter that walks the whole document for each of them visits 64 million nodes. */
const RECORDS: JsonValue[] = Array.from({ length: 4_000 }, (_, id) => ({ id: BigInt(id) }));

let base: string;
let root: string;
let provider: EvidenceProvider;

function write(relative: string, content: string | Uint8Array): void {
  const target = path.join(root, relative);
  mkdirSync(path.dirname(target), { recursive: true });
  writeFileSync(target, content);
}

beforeAll(async () => {
  base = realpathSync(mkdtempSync(path.join(tmpdir(), "dg-json-provider-")));
  root = path.join(base, "root");
  mkdirSync(root);
  mkdirSync(path.join(base, "root2"));
  writeFileSync(path.join(base, "root2", "secret.json"), '{"secret":true}');
  writeFileSync(path.join(base, "outside.json"), '{"outside":true}');
  write("a/b.json", DOCUMENT);
  write("config.yaml", "service:\n  name: api\n  replicas: 3\n  big: 18446744073709551615\n");
  write("upper/SETTINGS.YML", "enabled: true\n");
  write("dir/keep.json", "{}");
  write(
    "records.json",
    JSON.stringify(RECORDS, (_key, value) => (typeof value === "bigint" ? Number(value) : value)),
  );
  symlinkSync("a/b.json", path.join(root, "link.json"));
  symlinkSync("../outside.json", path.join(root, "escape.json"));
  symlinkSync("../root2/secret.json", path.join(root, "sibling.json"));
  symlinkSync("missing.json", path.join(root, "broken.json"));
  symlinkSync("config.yaml", path.join(root, "yaml-link.json"));
  symlinkSync(path.join(root, "a/b.json"), path.join(root, "absolute-link.json"));
  symlinkSync("loop-b.json", path.join(root, "loop-a.json"));
  symlinkSync("loop-a.json", path.join(root, "loop-b.json"));
  symlinkSync("../elsewhere", path.join(root, "out-relative"));
  symlinkSync(path.join(base, "elsewhere"), path.join(root, "out-absolute"));
  provider = await createJsonProvider({ root, root_id: ROOT_ID });
});

afterAll(() => {
  rmSync(base, { recursive: true, force: true });
});

/** `params` may be JSON null here, which the query schema never produces, to check the provider copes with it. */
function query(params: JsonValue | undefined, using: EvidenceProvider = provider): Promise<EvidenceResult> {
  return using.query({ provider_id: "json", check_id: "path", params: params as EvidenceQuery["params"] }, CONTEXT);
}

function located(relative: string) {
  return {
    evidence_ref: { uri: `dg+file://${ROOT_ID}/${relative}` },
    evidence_anchor: {
      anchor_type: "file_path_rooted",
      anchor_value: `{"path":"${relative}","root_id":"${ROOT_ID}"}`,
    },
  };
}

function success(value: JsonValue, relative: string, contentType = "application/json"): EvidenceResult {
  return {
    value: { kind: "json", value },
    lane: "verified",
    error: null,
    evidence_hash: null,
    ...located(relative),
    signature: null,
    content_type: contentType,
  };
}

/** An in-band error result; `relative` is set when the reference keeps the ref and anchor. */
function failure(code: string, message: string, details: JsonValue, relative?: string): EvidenceResult {
  return {
    value: null,
    lane: "verified",
    error: { code, message, details },
    evidence_hash: null,
    evidence_ref: null,
    evidence_anchor: null,
    signature: null,
    content_type: null,
    ...(relative === undefined ? {} : located(relative)),
  };
}

describe("json provider: documents", () => {
  it("answers with the whole JSON document, keeping integers exact", async () => {
    const result = await query({ file: "a/b.json" });
    expect(result.value?.kind).toBe("json");
    const document = result.value?.value as Record<string, JsonValue>;
    expect(document.big).toBe(18446744073709551615n);
    expect(document.negative).toBe(-9223372036854775808n);
    expect(document.ratio).toBe(1.5);
    expect(document.nothing).toBeNull();
    expect(result).toEqual(success(document, "a/b.json"));
  });

  it("reads .yaml files as YAML with the application/yaml content type", async () => {
    expect(await query({ file: "config.yaml" })).toEqual(
      success(
        { service: { name: "api", replicas: 3n, big: 18446744073709551615n } },
        "config.yaml",
        "application/yaml",
      ),
    );
  });

  it("recognizes the extension case-insensitively (.YML)", async () => {
    expect(await query({ file: "upper/SETTINGS.YML" })).toEqual(
      success({ enabled: true }, "upper/SETTINGS.YML", "application/yaml"),
    );
  });

  it("keeps big integers in YAML exact", async () => {
    const result = await query({ file: "config.yaml", jsonpath: "$.service.big" });
    expect(result.value).toEqual({ kind: "json", value: 18446744073709551615n });
  });

  it("takes the format from the resolved path's extension", async () => {
    const result = await query({ file: "yaml-link.json", jsonpath: "$.service.name" });
    expect(result).toEqual(success("api", "config.yaml", "application/yaml"));
  });

  it("reads an empty YAML file as null", async () => {
    write("empty.yaml", "");
    write("comments.yaml", "# nothing here\n");
    expect(await query({ file: "empty.yaml" })).toEqual(success(null, "empty.yaml", "application/yaml"));
    expect(await query({ file: "comments.yaml" })).toEqual(success(null, "comments.yaml", "application/yaml"));
  });
});

describe("json provider: paths below the root", () => {
  it("anchors files in nested directories with POSIX paths", async () => {
    const result = await query({ file: "a/b.json", jsonpath: "$.nested.value" });
    expect(result).toEqual(success("ok", "a/b.json"));
  });

  it("anchors the resolved path of a symlink that stays inside the root", async () => {
    expect(await query({ file: "link.json", jsonpath: "$.nested.value" })).toEqual(success("ok", "a/b.json"));
  });

  it("normalizes `.` and `..` that stay inside the root", async () => {
    expect(await query({ file: "./dir/../a/b.json", jsonpath: "$.ratio" })).toEqual(success(1.5, "a/b.json"));
  });

  it("refuses a symlink that escapes the root", async () => {
    expect(await query({ file: "escape.json" })).toEqual(
      failure("path_outside_root", "json file path escapes root", { file: "escape.json" }),
    );
  });

  it("refuses `../` escapes", async () => {
    expect(await query({ file: "../outside.json" })).toEqual(
      failure("path_outside_root", "json file path escapes root", { file: "../outside.json" }),
    );
  });

  it("does not treat a sibling directory sharing the root's name as a prefix as inside (/root2)", async () => {
    expect(await query({ file: "../root2/secret.json" })).toEqual(
      failure("path_outside_root", "json file path escapes root", { file: "../root2/secret.json" }),
    );
    expect(await query({ file: "sibling.json" })).toEqual(
      failure("path_outside_root", "json file path escapes root", { file: "sibling.json" }),
    );
  });

  it("answers byte for byte the same whether or not a file outside the root exists (no existence oracle)", async () => {
    const elsewhere = path.join(base, "elsewhere");
    const probes = [
      "../elsewhere/secret.json",
      "out-relative/secret.json",
      "out-absolute/secret.json",
      "out-relative/sub/../secret.json",
      "../elsewhere/sub/../../root/a/b.json",
      "out-absolute/sub/../../root/a/b.json",
    ];
    const answers = () => Promise.all(probes.map(async (file) => JSON.stringify(await query({ file }))));
    mkdirSync(path.join(elsewhere, "sub"), { recursive: true });
    writeFileSync(path.join(elsewhere, "secret.json"), '{"secret":true}');
    const present = await answers();
    rmSync(elsewhere, { recursive: true });
    const absent = await answers();
    expect(absent).toEqual(present);
    expect(present).toEqual(
      probes.map((file) => JSON.stringify(failure("path_outside_root", "json file path escapes root", { file }))),
    );
  });

  it("refuses absolute paths, even inside the root", async () => {
    const absolute = path.join(root, "a/b.json");
    expect(await query({ file: absolute })).toEqual(
      failure("absolute_path_forbidden", "json file path must be relative to the configured root", { file: absolute }),
    );
  });

  it("follows absolute symlinks and `..` through the root's parent that end inside the root", async () => {
    expect(await query({ file: "absolute-link.json", jsonpath: "$.ratio" })).toEqual(success(1.5, "a/b.json"));
    expect(await query({ file: "../root/a/b.json", jsonpath: "$.ratio" })).toEqual(success(1.5, "a/b.json"));
    expect(await query({ file: "../root" })).toEqual(
      failure("path_invalid", "json file path resolves to empty path", null),
    );
    expect(await query({ file: ".." })).toEqual(
      failure("path_outside_root", "json file path escapes root", { file: ".." }),
    );
  });

  it("reports missing files, broken symlinks, loops and unusable names as file_not_found", async () => {
    for (const file of [
      "missing.json",
      "broken.json",
      "loop-a.json",
      "a/b.json/x",
      "a/b.json/",
      "bad\u0000name.json",
    ]) {
      expect(await query({ file })).toEqual(failure("file_not_found", "unable to resolve json file", { file }));
    }
  });

  it("refuses a path that resolves to the root itself", async () => {
    for (const file of [".", "a/.."]) {
      expect(await query({ file })).toEqual(failure("path_invalid", "json file path resolves to empty path", null));
    }
  });

  it("reports a directory as a read failure, keeping the ref and anchor", async () => {
    expect(await query({ file: "dir" })).toEqual(
      failure("file_read_failed", "unable to read json file", { file: "dir" }, "dir"),
    );
  });

  it("reports a file that cannot be opened (a socket) as file_open_failed, keeping the ref and anchor", async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(path.join(root, "socket.json"), resolve));
    try {
      expect(await query({ file: "socket.json" })).toEqual(
        failure("file_open_failed", "unable to open json file", { file: "socket.json" }, "socket.json"),
      );
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe("json provider: size limit", () => {
  it("accepts a file of exactly max_bytes and refuses max_bytes + 1, reporting max + 1", async () => {
    const limited = await createJsonProvider({ root, root_id: ROOT_ID, max_bytes: 9 });
    write("size/exact.json", '{"a":"b"}');
    write("size/over.json", '{"a":"bc"}');
    write("size/huge.json", `{"a":"${"x".repeat(100_000)}"}`);
    expect(await query({ file: "size/exact.json" }, limited)).toEqual(success({ a: "b" }, "size/exact.json"));
    for (const file of ["size/over.json", "size/huge.json"]) {
      expect(await query({ file }, limited)).toEqual(
        failure(
          "size_limit_exceeded",
          "json file exceeds size limit",
          { file, max_bytes: 9n, actual_bytes: 10n },
          file,
        ),
      );
    }
  });
});

describe("json provider: parsing", () => {
  it("refuses a JSON file starting with a byte-order mark", async () => {
    write("bom.json", new Uint8Array([0xef, 0xbb, 0xbf, 0x7b, 0x7d]));
    expect(await query({ file: "bom.json" })).toEqual(
      failure("invalid_json", "invalid json", { file: "bom.json" }, "bom.json"),
    );
  });

  it("refuses invalid JSON (strict: no comments, no trailing commas)", async () => {
    write("invalid.json", '{"broken": }');
    write("trailing.json", '{"a": 1,}');
    write("notes.json", '{"a": 1} // note');
    for (const file of ["invalid.json", "trailing.json", "notes.json"]) {
      expect(await query({ file })).toEqual(failure("invalid_json", "invalid json", { file }, file));
    }
  });

  it("refuses invalid YAML, several YAML documents, and non-scalar keys", async () => {
    write("invalid.yaml", "key: : value");
    write("multi.yaml", "a: 1\n---\nb: 2\n");
    write("complex-key.yaml", "? [a, b]\n: value\n");
    write("bad-utf8.yaml", new Uint8Array([0x61, 0x3a, 0x20, 0xff]));
    for (const file of ["invalid.yaml", "multi.yaml", "complex-key.yaml", "bad-utf8.yaml"]) {
      expect(await query({ file })).toEqual(failure("invalid_yaml", "invalid yaml", { file }, file));
    }
  });

  it("refuses YAML files when allow_yaml is false", async () => {
    const jsonOnly = await createJsonProvider({ root, root_id: ROOT_ID, allow_yaml: false });
    expect(await query({ file: "config.yaml" }, jsonOnly)).toEqual(
      failure("yaml_disabled", "yaml parsing is disabled", { file: "config.yaml" }, "config.yaml"),
    );
    expect(await query({ file: "a/b.json", jsonpath: "$.ratio" }, jsonOnly)).toEqual(success(1.5, "a/b.json"));
  });
});

describe("json provider: YAML values as the reference resolves them", () => {
  const cases: Array<[string, JsonValue]> = [
    ["~", null],
    ["null", null],
    ["Null", "Null"],
    ["true", true],
    ["True", "True"],
    ["yes", "yes"],
    ["42", 42n],
    ["-17", -17n],
    ["+5", 5n],
    ["-0", 0n],
    ["18446744073709551615", 18446744073709551615n],
    ["99999999999999999999", 1e20],
    ["0xFFFFFFFFFFFFFFFFF", "0xFFFFFFFFFFFFFFFFF"],
    ["1e400", "1e400"],
    ["-9223372036854775808", -9223372036854775808n],
    ["1e3", 1000],
    ["1.0", 1],
    ["-2.5", -2.5],
    [".5", 0.5],
    ["0x1F", 31n],
    ["-0x10", -16n],
    ["0o17", 15n],
    ["0b101", 5n],
    ["007", "007"],
    ["1_000", "1_000"],
    [".inf", null],
    ["-.inf", null],
    ["+.Inf", null],
    [".nan", null],
    ["2024-01-02", "2024-01-02"],
    ['"42"', "42"],
    ["'true'", "true"],
    ["!!str 42", "42"],
    ["!!int 42", 42n],
    ["!!float 1", 1],
    ["!!bool true", true],
    ["!custom text", "text"],
  ];

  it.each(cases)("`%s`", async (source, expected) => {
    write("scalars/value.yaml", `value: ${source}\n`);
    const result = await query({ file: "scalars/value.yaml", jsonpath: "$.value" });
    expect(result.error).toBeNull();
    expect(result.value).toEqual({ kind: "json", value: expected });
  });

  it("treats a mismatching explicit core tag as invalid", async () => {
    write("scalars/bad-tag.yaml", "value: !!int nope\n");
    expect((await query({ file: "scalars/bad-tag.yaml" })).error?.code).toBe("invalid_yaml");
  });

  it("reads scalar keys as their text, resolves aliases and keeps the last duplicate", async () => {
    write("shapes.yaml", "1: one\ntrue: yes\nbase: &base {port: 80}\ncopy: *base\ndup: first\ndup: second\n");
    const result = await query({ file: "shapes.yaml" });
    expect(result.value?.value).toEqual({
      "1": "one",
      true: "yes",
      base: { port: 80n },
      copy: { port: 80n },
      dup: "second",
    });
  });

  it("refuses recursive aliases, alias bombs and nesting deeper than 128", async () => {
    const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
    for (const level of "bcdefghi") {
      const previous = String.fromCharCode(level.charCodeAt(0) - 1);
      bomb.push(`${level}: &${level} [${Array(10).fill(`*${previous}`).join(",")}]`);
    }
    write("recursive.yaml", "&a [*a]\n");
    write("bomb.yaml", `${bomb.join("\n")}\n`);
    write("deep.yaml", `${"[".repeat(129)}${"]".repeat(129)}\n`);
    write("deep-ok.yaml", `${"[".repeat(128)}${"]".repeat(128)}\n`);
    for (const file of ["recursive.yaml", "bomb.yaml", "deep.yaml"]) {
      expect((await query({ file })).error?.code).toBe("invalid_yaml");
    }
    expect((await query({ file: "deep-ok.yaml" })).error).toBeNull();
  });
});

describe("json provider: JSONPath", () => {
  it("unwraps exactly one match", async () => {
    expect(await query({ file: "a/b.json", jsonpath: "$.items[1].id" })).toEqual(success(2n, "a/b.json"));
    expect(await query({ file: "a/b.json", jsonpath: "$.one[*].id" })).toEqual(success(7n, "a/b.json"));
  });

  it("treats a match whose value is null as present", async () => {
    expect(await query({ file: "a/b.json", jsonpath: "$.nothing" })).toEqual(success(null, "a/b.json"));
  });

  it("returns several matches as an array in result order", async () => {
    expect(await query({ file: "a/b.json", jsonpath: "$.items[*].id" })).toEqual(success([1n, 2n, 3n], "a/b.json"));
  });

  it("evaluates filter expressions", async () => {
    expect(await query({ file: "a/b.json", jsonpath: "$.items[?@.ok == true].id" })).toEqual(
      success([1n, 3n], "a/b.json"),
    );
    expect(await query({ file: "a/b.json", jsonpath: "$.items[?(@.id > 1 && @.ok == true)].id" })).toEqual(
      success(3n, "a/b.json"),
    );
    // `@.ok` alone tests that the member exists (RFC 9535), whatever its value.
    expect(await query({ file: "a/b.json", jsonpath: "$.items[?@.ok].id" })).toEqual(success([1n, 2n, 3n], "a/b.json"));
    expect(await query({ file: "a/b.json", jsonpath: "$.items[?length(@) == 2]" })).toEqual(
      success(
        [
          { id: 1n, ok: true },
          { id: 2n, ok: false },
          { id: 3n, ok: true },
        ],
        "a/b.json",
      ),
    );
  });

  it("returns the exact value of a big integer match", async () => {
    expect(await query({ file: "a/b.json", jsonpath: "$['big']" })).toEqual(success(18446744073709551615n, "a/b.json"));
  });

  it("selects members whose names need escaping", async () => {
    expect(await query({ file: "a/b.json", jsonpath: "$['odd keys'][\"it's\"]" })).toEqual(
      success("quote", "a/b.json"),
    );
    expect(await query({ file: "a/b.json", jsonpath: "$['odd keys']['line\\nbreak']" })).toEqual(
      success("newline", "a/b.json"),
    );
  });

  it("reports zero matches as jsonpath_not_found, keeping the ref and anchor", async () => {
    expect(await query({ file: "a/b.json", jsonpath: "$.missing" })).toEqual(
      failure("jsonpath_not_found", "jsonpath not found: $.missing", { jsonpath: "$.missing" }, "a/b.json"),
    );
  });

  it("reports invalid expressions as invalid_jsonpath, keeping the ref and anchor", async () => {
    for (const jsonpath of ["$[invalid", "$..", "items[0]", "$[?foo(@)]", "$[?length(@, 1)]"]) {
      expect(await query({ file: "a/b.json", jsonpath })).toEqual(
        failure("invalid_jsonpath", "invalid jsonpath", { jsonpath }, "a/b.json"),
      );
    }
  });
});

describe("selectJsonPath", () => {
  it("returns the matches in order, and the root for `$`", () => {
    const document: JsonValue = { a: [1n, null, { b: 2n }] };
    expect(selectJsonPath(document, "$.a[*]")).toEqual({ kind: "matches", values: [1n, null, { b: 2n }] });
    expect(selectJsonPath(document, "$")).toEqual({ kind: "matches", values: [document] });
    expect(selectJsonPath(document, "$.z")).toEqual({ kind: "matches", values: [] });
    expect(selectJsonPath(document, "$[")).toEqual({ kind: "invalid" });
  });

  it("walks byte strings as integer arrays", () => {
    expect(selectJsonPath({ bytes: Uint8Array.from([7, 8]) }, "$.bytes[1]")).toEqual({ kind: "matches", values: [8n] });
  });
});

describe("JSONPath work limits", () => {
  /** 120 levels of nesting above 40,000 numbers: whatever a descendant query selects down there, it pays for the depth. */
  let deep: JsonValue = Array.from({ length: 40_000 }, () => 0n);
  for (let level = 0; level < 120; level++) deep = { a: deep };
  const STEPS_EXCEEDED = { kind: "limit_exceeded", message: `jsonpath evaluation exceeds ${MAX_JSONPATH_STEPS} steps` };
  const RESULT_EXCEEDED = {
    kind: "limit_exceeded",
    message: `jsonpath result exceeds ${MAX_JSONPATH_RESULT_NODES} nodes`,
  };

  const matchCount = (document: JsonValue, expression: string) => {
    const selection = selectJsonPath(document, expression);
    if (selection.kind !== "matches") throw new Error(`${expression}: ${JSON.stringify(selection)}`);
    return selection.values.length;
  };

  it("stops queries whose work grows faster than the document after a fixed number of steps", () => {
    const started = performance.now();
    // Unbounded, each of these takes from seconds (the first: 8 s) to hours.
    expect(selectJsonPath(RECORDS, "$[?count($..*) > 0]")).toEqual(STEPS_EXCEEDED);
    expect(selectJsonPath(RECORDS, "$[?$..id]")).toEqual(STEPS_EXCEEDED);
    expect(selectJsonPath(RECORDS, `$[?${"@.id == -1 || ".repeat(700)}@.id == -2]`)).toEqual(STEPS_EXCEEDED);
    expect(selectJsonPath(deep, "$..[?@..x]")).toEqual(STEPS_EXCEEDED);
    // Each of the 40,000 numbers is queued with a path 121 keys long.
    expect(selectJsonPath(deep, "$..[?@ == 0]")).toEqual(STEPS_EXCEEDED);
    expect(performance.now() - started).toBeLessThan(30_000);
  });

  it("stops queries whose answer grows faster than the document", () => {
    // The answer would hold the 40,000 numbers once for each of their 120 ancestors (and once more per ancestor).
    expect(selectJsonPath(deep, "$..*")).toEqual(RESULT_EXCEEDED);
    expect(selectJsonPath(deep, "$..*..*")).toEqual(RESULT_EXCEEDED);
    const list = { list: RECORDS };
    expect(matchCount(list, "$['list','list']")).toBe(2);
    expect(selectJsonPath(list, `$[${"'list',".repeat(125)}'list']`)).toEqual(RESULT_EXCEEDED);
  });

  it("still answers ordinary queries over the same documents (positive control)", () => {
    expect(matchCount(RECORDS, "$[?count(@..*) > 0]")).toBe(4_000);
    expect(matchCount(RECORDS, "$..id")).toBe(4_000);
    expect(matchCount(RECORDS, `$[?${"@.id == -1 || ".repeat(100)}@.id == 7]`)).toBe(1);
    expect(selectJsonPath(RECORDS, "$[?@.id > 3997].id")).toEqual({ kind: "matches", values: [3998n, 3999n] });
    expect(selectJsonPath(deep, "$..a[-1:]")).toEqual({ kind: "matches", values: [0n] });
  });

  it("lets `$..*` select every node of a 1 MiB document (the provider's default max_bytes)", () => {
    const tags = ["build", "test", "deploy"];
    const records = Array.from({ length: 14_200 }, (_, id) => ({ id: BigInt(id), name: `svc-${id}`, ok: true, tags }));
    const size = JSON.stringify(records, (_key, value) => (typeof value === "bigint" ? Number(value) : value)).length;
    expect(size).toBeGreaterThan(1_000_000);
    expect(size).toBeLessThanOrEqual(1_048_576);
    expect(matchCount(records, "$..*")).toBe(14_200 * 8);
  });
});

describe("json provider: the worker thread", () => {
  it("keeps serving concurrent queries while one of them runs into the step budget", async () => {
    const answers = await Promise.all([
      query({ file: "records.json", jsonpath: "$[?count($..*) > 0]" }),
      query({ file: "a/b.json", jsonpath: "$.items[1].id" }),
      query({ file: "records.json", jsonpath: "$[-1].id" }),
      query({ file: "config.yaml", jsonpath: "$.service.name" }),
    ]);
    expect(answers).toEqual([
      failure(
        "jsonpath_limit_exceeded",
        `jsonpath evaluation exceeds ${MAX_JSONPATH_STEPS} steps`,
        { jsonpath: "$[?count($..*) > 0]" },
        "records.json",
      ),
      success(2n, "a/b.json"),
      success(3999n, "records.json"),
      success("api", "config.yaml", "application/yaml"),
    ]);
  });

  /** A request about 20,000 records (250 KB). */
  const content = Buffer.from(JSON.stringify(Array.from({ length: 20_000 }, (_, id) => ({ id }))));
  const request = (jsonpath: string): DocumentRequest => ({ content, format: "json", file: "big.json", jsonpath });
  const limitExceeded = (message: string, jsonpath: string) => ({
    kind: "failure",
    code: "jsonpath_limit_exceeded",
    message,
    details: { jsonpath },
  });

  it("ends an evaluation the budget cannot count at the time limit; the event loop runs on meanwhile", async () => {
    const client = new JsonWorkerClient({ timeLimitMs: 500 });
    let longestPause = 0;
    let last = performance.now();
    const ticker = setInterval(() => {
      longestPause = Math.max(longestPause, performance.now() - last);
      last = performance.now();
    }, 20);
    try {
      // Deep equality of the whole document with itself, once per element: 20,000 × 40,000 node comparisons.
      expect(await client.answer(request("$[?$ == $]"))).toEqual(
        limitExceeded("jsonpath evaluation exceeds 500 ms", "$[?$ == $]"),
      );
    } finally {
      clearInterval(ticker);
    }
    expect(longestPause).toBeLessThan(1_000);
    // A fresh worker takes the next request.
    expect(await client.answer(request("$[1].id"))).toEqual({ kind: "value", value: 1n });
  });

  it("ends an evaluation that fills the worker's heap, not the server", async () => {
    const client = new JsonWorkerClient({ heapMb: 64 });
    // The union queues every element 400 times before selecting any: 8 million nodes waiting at once.
    const union = `$[${"*,".repeat(399)}*]`;
    expect(await client.answer(request(union))).toEqual(
      limitExceeded("jsonpath evaluation exceeds the worker's 64 MiB heap", union),
    );
    expect(await client.answer(request("$[2].id"))).toEqual({ kind: "value", value: 2n });
  });
});

describe("json provider: params", () => {
  const cases: Array<[string, JsonValue | undefined, string, string]> = [
    ["absent params", undefined, "params_missing", "json check requires params"],
    ["null params", null, "params_missing", "json check requires params"],
    ["string params", "a/b.json", "params_invalid", "json params must be an object"],
    ["array params", ["a/b.json"], "params_invalid", "json params must be an object"],
    ["no file", { other: "value" }, "params_missing", "missing file param"],
    ["numeric file", { file: 12345n }, "params_invalid", "file param must be a string"],
    ["null file", { file: null }, "params_invalid", "file param must be a string"],
    ["numeric jsonpath", { file: "a/b.json", jsonpath: 123n }, "params_invalid", "jsonpath param must be a string"],
    ["null jsonpath", { file: "a/b.json", jsonpath: null }, "params_invalid", "jsonpath param must be a string"],
    ["empty file", { file: "" }, "path_missing", "json file path is empty"],
  ];

  it.each(cases)("%s", async (_name, params, code, message) => {
    expect(await query(params)).toEqual(failure(code, message, null));
  });

  it("fails the query for any check other than `path`", async () => {
    const attempt = provider.query({ provider_id: "json", check_id: "read", params: { file: "a/b.json" } }, CONTEXT);
    await expect(attempt).rejects.toBeInstanceOf(EvidenceProviderFailure);
    await expect(attempt).rejects.toThrow("evidence provider error: unsupported json check");
  });
});

describe("json provider: configuration", () => {
  it("defaults max_bytes to 1 MiB and allow_yaml to true", () => {
    expect(JsonProviderConfig.parse({ root: "data", root_id: "data" })).toEqual({
      root: "data",
      root_id: "data",
      max_bytes: 1_048_576,
      allow_yaml: true,
    });
    expect(JsonProviderConfig.parse({ root: "data", root_id: "data", max_bytes: 10n }).max_bytes).toBe(10);
  });

  it("reports root_id problems with the reference's messages", () => {
    const messageFor = (root_id: unknown) =>
      JsonProviderConfig.safeParse({ root: "data", root_id }).error?.issues.map((issue) => issue.message);
    expect(messageFor(undefined)).toEqual(["json provider requires config.root_id"]);
    expect(messageFor("")).toEqual(["json provider requires config.root_id"]);
    expect(messageFor("a".repeat(65))).toEqual(["json provider root_id exceeds 64 characters"]);
    expect(messageFor("BadRoot")).toEqual(["json provider root_id must be lowercase ascii, digits, '-' or '_'"]);
    expect(messageFor("a".repeat(64))).toBeUndefined();
    expect(messageFor("-lead_ok-1")).toBeUndefined();
  });

  const refusals: Array<[string, () => Record<string, unknown>, string]> = [
    ["missing root", () => ({ root_id: ROOT_ID }), "json provider requires config.root"],
    ["empty root", () => ({ root: "", root_id: ROOT_ID }), "json provider requires config.root"],
    ["empty root_id", () => ({ root, root_id: "" }), "json provider requires config.root_id"],
    ["long root_id", () => ({ root, root_id: "r".repeat(65) }), "json provider root_id exceeds 64 characters"],
    [
      "uppercase root_id",
      () => ({ root, root_id: "BadRoot" }),
      "json provider root_id must be lowercase ascii, digits, '-' or '_'",
    ],
    [
      "missing root directory",
      () => ({ root: path.join(base, "nope"), root_id: ROOT_ID }),
      "json provider root does not exist",
    ],
    [
      "root that is a file",
      () => ({ root: path.join(base, "outside.json"), root_id: ROOT_ID }),
      "json provider root is not a directory",
    ],
  ];

  it.each(refusals)("refuses a %s", async (_name, config, message) => {
    const attempt = createJsonProvider(config() as JsonProviderConfig);
    await expect(attempt).rejects.toBeInstanceOf(InvalidInputError);
    await expect(attempt).rejects.toMatchObject({ message });
  });

  it("resolves a relative root against the given working directory", async () => {
    const relative = await createJsonProvider({ root: "root", root_id: ROOT_ID }, { cwd: base });
    expect(relative.providerId).toBe("json");
    expect(await query({ file: "a/b.json", jsonpath: "$.ratio" }, relative)).toEqual(success(1.5, "a/b.json"));
  });
});
