import { describe, expect, it } from "vitest";
import { iRegexpToRe2 } from "../../src/evidence/builtin/iregexp.js";
import { selectJsonPath } from "../../src/evidence/builtin/jsonpath.js";
import {
  MAX_REGEX_INPUT_LENGTH,
  MAX_REGEX_PATTERN_LENGTH,
  MAX_REGEX_STEPS,
} from "../../src/evidence/builtin/jsonpath-regex.js";
import type { JsonValue } from "../../src/json/value.js";

/* JSONPath match()/search(): I-Regexp (RFC 9485) patterns run by RE2, with bounded work. */

const matches = (document: JsonValue, expression: string) => {
  const selection = selectJsonPath(document, expression);
  if (selection.kind !== "matches") throw new Error(`expected matches, got ${JSON.stringify(selection)}`);
  return selection.values;
};

/** `$[?<fn>(@, '<pattern>')]` over an array of candidate strings: the ones selected. */
const select = (fn: "match" | "search", pattern: string, candidates: JsonValue[]) =>
  matches(candidates, `$[?${fn}(@, '${pattern.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}')]`);

describe("match() and search(): the RFC 9535 semantics", () => {
  it("evaluates the RFC 9535 §2.4.6–7 examples", () => {
    const dates = [{ date: "1974-05-01" }, { date: "1974-05-31" }, { date: "1974-06-01" }, { date: "x1974-05-01" }];
    expect(matches(dates, '$[?match(@.date, "1974-05-..")]')).toEqual(dates.slice(0, 2));
    const authors = [{ author: "Bob" }, { author: "Robert" }, { author: "bob" }, { author: "Alice" }];
    expect(matches(authors, '$[?search(@.author, "[BR]ob")]')).toEqual(authors.slice(0, 2));
  });

  it("anchors match() at both ends and leaves search() unanchored", () => {
    expect(select("match", "a.*", ["abc", "bab", "a"])).toEqual(["abc", "a"]);
    expect(select("search", "a.*", ["abc", "bab", "b"])).toEqual(["abc", "bab"]);
    expect(select("match", "a|ab", ["ab", "a", "b"])).toEqual(["ab", "a"]);
    expect(select("search", "b$", ["ab", "ba"])).toEqual(["ab"]);
    expect(select("match", "^ab.*", ["abc", "axc", "ab", "xab"])).toEqual(["abc", "ab"]);
  });

  it("lets `.` match any character but \\n and \\r, astral characters included", () => {
    expect(select("match", ".", ["\u2028", "\u2029", "\r", "\n", "é"])).toEqual(["\u2028", "\u2029", "é"]);
    expect(select("match", "a.b", ["a\u{10101}b", "ab", "a\nb"])).toEqual(["a\u{10101}b"]);
  });

  it("supports classes, ranges, escapes, categories and counted repetition", () => {
    expect(select("match", "a[.b]c", ["abc", "a.c", "axc"])).toEqual(["abc", "a.c"]);
    expect(select("match", "a\\.c", ["abc", "a.c"])).toEqual(["a.c"]);
    expect(select("match", "a\\\\.c", ["a\\xc", "a.c"])).toEqual(["a\\xc"]);
    expect(select("match", "a[\\].]c", ["a]c", "a.c", "abc"])).toEqual(["a]c", "a.c"]);
    expect(select("match", "[^-a]", ["-", "a", "b"])).toEqual(["b"]);
    expect(select("match", "[a-]", ["-", "a", "b"])).toEqual(["-", "a"]);
    expect(select("match", "\\p{Lu}", ["Ж", "ж", "1"])).toEqual(["Ж"]);
    expect(select("match", "\\P{Lu}", ["Ж", "ж", "1"])).toEqual(["ж", "1"]);
    expect(select("match", "[\\p{Nd}x]+", ["12x", "1a"])).toEqual(["12x"]);
    expect(select("match", "[0-9]{4}-[0-9]{2}", ["2024-05", "202-05", "2024-5"])).toEqual(["2024-05"]);
    expect(select("match", "x{2,}y{0,1}", ["xx", "xxxy", "xyy", "x"])).toEqual(["xx", "xxxy"]);
    expect(select("match", "(ab|c)+\\t", ["abcab\t", "ac\t"])).toEqual(["abcab\t"]);
    expect(select("match", "a$b|q", ["a$b", "q"])).toEqual(["q"]);
    expect(select("match", "[$^]", ["$", "^", "a"])).toEqual(["$", "^"]);
  });

  it("takes the pattern from the document, and is false for non-string arguments", () => {
    const document = { regex: "b.?", values: ["abc", "bc", "bd", 1n, null] };
    expect(matches(document, "$.values[?match(@, $.regex)]")).toEqual(["bc", "bd"]);
    expect(matches(document, "$.values[?search(@, $.regex)]")).toEqual(["abc", "bc", "bd"]);
    expect(matches(document, "$.values[?match(@, 1)]")).toEqual([]);
    expect(matches(document, "$.values[?!match(@, 'b.?')]")).toEqual(["abc", 1n, null]);
  });

  it("makes the functions false (LogicalFalse) for patterns that are not I-Regexps", () => {
    const invalid = ["\\d", "\\w+", "(?:a)", "a*?", "(a)\\1", "(?=a)", "a**", "^*", "[]", "[^]", "[b-a]", "a{2,1}"];
    for (const pattern of [...invalid, "a{,2}", "(a", "a)", "\\p{Lx}", "[a-\\p{L}]", "\\q", "a{"]) {
      expect(select("search", pattern, ["a", "aa", "1", "(a)"]), pattern).toEqual([]);
      expect(select("match", `(${pattern})|a`, ["a"]), pattern).toEqual([]);
    }
    expect(matches(["a"], "$[?!match(@, '\\\\d')]")).toEqual(["a"]);
    // A lone surrogate cannot be written in a JSONPath string literal, but may come from the document.
    expect(matches({ regex: "x\ud800", values: ["x\ud800"] }, "$.values[?match(@, $.regex)]")).toEqual([]);
  });
});

describe("match() and search(): limits", () => {
  it("answers catastrophic backtracking patterns in linear time", () => {
    const subject = `${"a".repeat(5_000)}!`;
    const started = performance.now();
    expect(select("match", "(a|a)*", [subject])).toEqual([]);
    expect(select("search", "(a|a)*b", [subject])).toEqual([]);
    expect(select("match", "(a*)*b", [subject])).toEqual([]);
    expect(select("match", "(a|a)*!", [subject])).toEqual([subject]);
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it("stops the evaluation at a pattern or input that is too long", () => {
    expect(selectJsonPath(["x"], `$[?match(@, '${"x".repeat(MAX_REGEX_PATTERN_LENGTH + 1)}')]`)).toEqual({
      kind: "limit_exceeded",
      message: `jsonpath regex pattern exceeds ${MAX_REGEX_PATTERN_LENGTH} characters`,
    });
    expect(select("match", "x".repeat(MAX_REGEX_PATTERN_LENGTH), ["x".repeat(MAX_REGEX_PATTERN_LENGTH)])).toHaveLength(
      1,
    );
    expect(select("search", "x$", ["x".repeat(MAX_REGEX_INPUT_LENGTH)])).toHaveLength(1);
    expect(selectJsonPath(["x".repeat(MAX_REGEX_INPUT_LENGTH + 1)], "$[?search(@, 'x$')]")).toEqual({
      kind: "limit_exceeded",
      message: `jsonpath regex input exceeds ${MAX_REGEX_INPUT_LENGTH} characters`,
    });
    // An invalid pattern is false before the input is looked at.
    expect(select("search", "\\d", ["x".repeat(MAX_REGEX_INPUT_LENGTH + 1)])).toEqual([]);
  });

  it("stops at repetition counts beyond RE2's (a valid I-Regexp the engine refuses)", () => {
    expect(select("match", "x{1000}", ["x".repeat(1000)])).toHaveLength(1);
    for (const pattern of ["x{1001}", "(x{100}){100}", "x{99999999999999999999}"]) {
      expect(selectJsonPath(["x"], `$[?match(@, '${pattern}')]`)).toEqual({
        kind: "limit_exceeded",
        message: "jsonpath regex pattern exceeds the regex engine's limits",
      });
    }
  });

  it("bounds the regex work of one evaluation, however many strings it visits", () => {
    let seed = 7;
    const nextBit = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return (seed >> 16) % 2;
    };
    const strings = Array.from({ length: 2_000 }, () => Array.from({ length: 500 }, () => "ab"[nextBit()]).join(""));
    // RE2 simulates a 1,292-instruction program on every character here: unbounded, this takes 20 s and more.
    const heavy = "([ab]*a[ab]{19}|[ab]*b[ab]{17}){30}";
    const started = performance.now();
    expect(selectJsonPath(strings, `$[?match(@, '${heavy}')]`)).toEqual({
      kind: "limit_exceeded",
      message: `jsonpath regex work exceeds ${MAX_REGEX_STEPS} steps in one evaluation`,
    });
    expect(performance.now() - started).toBeLessThan(10_000);
    // An ordinary pattern over the same megabyte of text stays within the budget.
    expect(matches(strings, "$[?search(@, '(abba|baab)b')]").length).toBeGreaterThan(0);
  });
});

describe("iRegexpToRe2", () => {
  it("writes literals as code points, so no RE2 syntax passes through", () => {
    expect(iRegexpToRe2("a-b.c[x-z\\]]")).toEqual({
      kind: "re2",
      source: "a\\x{2d}b[^\\n\\r]c[x-z\\x{5d}]",
      programSize: 8,
    });
    expect(iRegexpToRe2("(a|bc)*\\p{Lu}{2,3}")).toMatchObject({ source: "(?:a|bc)*\\p{Lu}{2,3}" });
    expect(iRegexpToRe2("x{007}")).toMatchObject({ source: "x{7}" });
    expect(iRegexpToRe2("\\d")).toEqual({ kind: "invalid" });
    expect(iRegexpToRe2("x{1001}")).toEqual({ kind: "unsupported" });
  });
});
