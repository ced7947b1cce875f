import { describe, expect, it } from "vitest";
import { compareCodePoints, evaluateComparator } from "../../src/core/compare/comparator.js";
import { compareTemporal, parseDateOnly, parseDateTime } from "../../src/core/compare/datetime.js";
import { compareDecimal } from "../../src/core/compare/decimal.js";
import type { EvidenceValue } from "../../src/core/run/schema.js";
import { COMPARATORS, type Comparator } from "../../src/core/spec/schema.js";
import type { TriState } from "../../src/core/wire/common.js";
import { parseJson } from "../../src/json/parse.js";

/** [comparator, evidence E as JSON text, expected X as JSON text (undefined = none), result]. */
type Row = [Comparator, string, string | undefined, TriState];

const VALUE_COMPARATORS = COMPARATORS.filter((comparator) => comparator !== "exists" && comparator !== "not_exists");

function json(text: string): EvidenceValue {
  return { kind: "json", value: parseJson(text) };
}

function evaluate(comparator: Comparator, evidence: string, expected: string | undefined): TriState {
  return evaluateComparator(comparator, expected === undefined ? undefined : parseJson(expected), json(evidence));
}

function table(rows: Row[]): void {
  it.each(rows)("%s: E=%s X=%s → %s", (comparator, evidence, expected, result) => {
    expect(evaluate(comparator, evidence, expected)).toBe(result);
  });
}

/** Ordering comparators over two strings, given as plain text. */
function ordering(comparator: Comparator, evidence: string, expected: string): TriState {
  return evaluateComparator(comparator, expected, { kind: "json", value: evidence });
}

function expectSameInstant(a: string, b: string): void {
  expect(ordering("greater_than_or_equal", a, b)).toBe("True");
  expect(ordering("less_than_or_equal", a, b)).toBe("True");
  expect(ordering("greater_than", a, b)).toBe("False");
  expect(ordering("less_than", a, b)).toBe("False");
}

function expectUnordered(a: string, b: string): void {
  for (const comparator of ["greater_than", "greater_than_or_equal", "less_than", "less_than_or_equal"] as const) {
    expect(ordering(comparator, a, b)).toBe("Unknown");
  }
}

describe("dispatch (engine §3.1)", () => {
  const bytes: EvidenceValue = { kind: "bytes", value: Uint8Array.of(1, 2, 3) };

  it("exists is True for any present value, including JSON null and bytes, and ignores expected", () => {
    expect(evaluateComparator("exists", undefined, json("1"))).toBe("True");
    expect(evaluateComparator("exists", undefined, json("null"))).toBe("True");
    expect(evaluateComparator("exists", undefined, bytes)).toBe("True");
    expect(evaluateComparator("exists", 5n, json('"x"'))).toBe("True");
    expect(evaluateComparator("exists", undefined, null)).toBe("False");
  });

  it("not_exists is the reverse of exists", () => {
    expect(evaluateComparator("not_exists", undefined, json("null"))).toBe("False");
    expect(evaluateComparator("not_exists", undefined, bytes)).toBe("False");
    expect(evaluateComparator("not_exists", 5n, json("1"))).toBe("False");
    expect(evaluateComparator("not_exists", undefined, null)).toBe("True");
    expect(evaluateComparator("not_exists", 5n, null)).toBe("True");
  });

  it.each(VALUE_COMPARATORS)("%s with no evidence value is Unknown", (comparator) => {
    expect(evaluateComparator(comparator, 1n, null)).toBe("Unknown");
    expect(evaluateComparator(comparator, undefined, null)).toBe("Unknown");
  });

  it.each(VALUE_COMPARATORS)("%s with no expected value is Unknown (JSON and bytes evidence)", (comparator) => {
    for (const evidence of ["1", "null", '"a"', "[1]", '{"a":1}']) {
      expect(evaluateComparator(comparator, undefined, json(evidence))).toBe("Unknown");
    }
    expect(evaluateComparator(comparator, undefined, bytes)).toBe("Unknown");
  });

  it("a JSON null expected value is a value at the comparator level (null equals null)", () => {
    expect(evaluateComparator("equals", null, json("null"))).toBe("True");
    expect(evaluateComparator("not_equals", null, json("null"))).toBe("False");
    expect(evaluateComparator("in_set", parseJson("[null]"), json("null"))).toBe("True");
  });
});

describe("bytes evidence (engine §3.1 item 4, §B.11)", () => {
  function bytesRow(comparator: Comparator, evidence: number[], expected: string | undefined): TriState {
    const value: EvidenceValue = { kind: "bytes", value: Uint8Array.from(evidence) };
    return evaluateComparator(comparator, expected === undefined ? undefined : parseJson(expected), value);
  }

  it.each<[Comparator, number[], string, TriState]>([
    ["equals", [1, 2, 3], "[1,2,3]", "True"],
    ["equals", [1, 2, 3], "[1,2]", "False"],
    ["equals", [1, 2, 3], "[3,2,1]", "False"],
    ["equals", [0, 255], "[0,255]", "True"],
    ["not_equals", [1, 2, 3], "[1,2,3]", "False"],
    ["not_equals", [1, 2, 3], "[1,2,4]", "True"],
    ["equals", [], "[]", "True"],
    ["not_equals", [], "[]", "False"],
    ["equals", [1], "[]", "False"],
    ["equals", [], "[0]", "False"],
  ])("%s: bytes %j vs X=%s → %s", (comparator, evidence, expected, result) => {
    expect(bytesRow(comparator, evidence, expected)).toBe(result);
  });

  it.each([
    "[-1]",
    "[256]",
    "[1.0]",
    "[1e0]",
    '["1"]',
    "[null]",
    "[[1]]",
    "1",
    '"\\u0001"',
    '{"0":1}',
    "null",
    "[1,-0]",
  ])("expected %s is not a byte array → Unknown for equals and not_equals", (expected) => {
    expect(bytesRow("equals", [1], expected)).toBe("Unknown");
    expect(bytesRow("not_equals", [1], expected)).toBe("Unknown");
  });

  it.each(VALUE_COMPARATORS.filter((comparator) => comparator !== "equals" && comparator !== "not_equals"))(
    "%s on bytes is Unknown even with a valid byte array",
    (comparator) => {
      expect(bytesRow(comparator, [1, 2], "[1,2]")).toBe("Unknown");
      expect(bytesRow(comparator, [1, 2], "[1]")).toBe("Unknown");
      expect(bytesRow(comparator, [], "[]")).toBe("Unknown");
    },
  );

  it("accepts an expected value already held as a Uint8Array", () => {
    const value: EvidenceValue = { kind: "bytes", value: Uint8Array.of(7) };
    expect(evaluateComparator("equals", Uint8Array.of(7), value)).toBe("True");
    expect(evaluateComparator("not_equals", Uint8Array.of(8), value)).toBe("True");
  });
});

describe("equals / not_equals (engine §3.2)", () => {
  describe("equality examples table", () => {
    table([
      ["equals", '"123"', "123", "False"],
      ["equals", "true", "1", "False"],
      ["equals", "null", "0", "False"],
      ["equals", "[1]", "1", "False"],
      ["equals", "null", "null", "True"],
      ["not_equals", '"123"', "123", "True"],
      ["not_equals", "true", "1", "True"],
      ["not_equals", "null", "0", "True"],
      ["not_equals", "[1]", "1", "True"],
      ["not_equals", "null", "null", "False"],
    ]);
  });

  describe("numbers compare as decimals; everything else structurally", () => {
    table([
      ["equals", "1", "1.0", "True"],
      ["equals", "1.0", "1.00", "True"],
      ["equals", "1e3", "1000", "True"],
      ["equals", "1000", "1E3", "True"],
      ["equals", "-5", "-5.0", "True"],
      ["equals", "0.1", "0.10", "True"],
      ["equals", "0.30000000000000004", "0.3", "False"],
      ["not_equals", "1", "1.0", "False"],
      ["not_equals", "1", "2", "True"],
      ["equals", '"a"', '"a"', "True"],
      ["equals", '"a"', '"A"', "False"],
      ["equals", '"\\u00e9"', '"e\\u0301"', "False"],
      ["equals", "true", "true", "True"],
      ["equals", "false", "true", "False"],
      ["equals", '{"a":1,"b":2}', '{"b":2,"a":1}', "True"],
      ["equals", '{"a":1}', '{"a":1,"b":2}', "False"],
      ["equals", "[1,2]", "[1,2]", "True"],
      ["equals", "[1,2]", "[2,1]", "False"],
      ["equals", "[1]", "[1.0]", "False"],
      ["equals", '{"a":1}', '{"a":1.0}', "False"],
      ["not_equals", "[1]", "[1.0]", "True"],
      ["equals", '"1e3"', "1000", "False"],
      ["equals", '"Infinity"', "1e308", "False"],
      ["equals", '"2024-01-01T00:00:00Z"', '"2024-01-01T01:00:00+01:00"', "False"],
      ["equals", '"2024-01-01"', '"2024-1-1"', "False"],
    ]);
  });

  describe("a type mismatch is False for equals and True for not_equals, never Unknown", () => {
    const mismatches: [string, string][] = [
      ['"1"', "1"],
      ["1", "true"],
      ["null", "false"],
      ["[]", "{}"],
      ['{"a":1}', '"a"'],
      ["[1]", "1"],
      ['""', "null"],
    ];
    table(
      mismatches.flatMap(([e, x]): Row[] => [
        ["equals", e, x, "False"],
        ["not_equals", e, x, "True"],
      ]),
    );
  });
});

describe("ordering comparators (engine §3.2, §3.3)", () => {
  describe("numbers", () => {
    table([
      ["greater_than", "2", "1", "True"],
      ["greater_than", "1", "1", "False"],
      ["greater_than", "1", "2", "False"],
      ["greater_than_or_equal", "1", "1.0", "True"],
      ["greater_than_or_equal", "0.5", "1", "False"],
      ["less_than", "1", "2", "True"],
      ["less_than", "2", "2.0", "False"],
      ["less_than_or_equal", "1", "1", "True"],
      ["less_than_or_equal", "1.5", "1", "False"],
      ["less_than", "-1.5", "-1", "True"],
      ["greater_than", "-1", "-1.5", "True"],
    ]);
  });

  describe("anything but number/number or string/string is Unknown", () => {
    table([
      ["greater_than", "1", '"0"', "Unknown"],
      ["greater_than", '"1"', "0", "Unknown"],
      ["greater_than", '"1e3"', "1", "Unknown"],
      ["less_than", '"Infinity"', "1", "Unknown"],
      ["less_than", '"NaN"', "1", "Unknown"],
      ["greater_than", "true", "false", "Unknown"],
      ["greater_than_or_equal", "null", "null", "Unknown"],
      ["less_than_or_equal", "[1]", "[2]", "Unknown"],
      ["less_than", "{}", "{}", "Unknown"],
      ["greater_than", "[2]", "1", "Unknown"],
    ]);
  });

  describe("strings order only as dates", () => {
    table([
      ["greater_than", '"b"', '"a"', "Unknown"],
      ["less_than", '"a"', '"b"', "Unknown"],
      ["greater_than_or_equal", '"a"', '"a"', "Unknown"],
      ["less_than", '"1"', '"2"', "Unknown"],
      ["greater_than", '"2024-01-02T00:00:00Z"', '"2024-01-01T00:00:00Z"', "True"],
      ["less_than", '"2024-01-02T00:00:00Z"', '"2024-01-01T00:00:00Z"', "False"],
      ["greater_than", '"2024-01-02"', '"2024-01-01"', "True"],
      ["less_than_or_equal", '"2024-01-01"', '"2024-01-01"', "True"],
      ["greater_than", '"2024-01-02"', '"2024-01-01T00:00:00Z"', "Unknown"],
      ["less_than", '"2024-01-01T00:00:00Z"', '"2024-01-02"', "Unknown"],
      ["greater_than", '"2024-01-02T00:00:00Z"', '"tomorrow"', "Unknown"],
      ["greater_than", '"2024-01-02"', '"tomorrow"', "Unknown"],
    ]);
  });
});

describe("numeric precision (engine §3.3, §B.9)", () => {
  it("keeps the literal kinds these rows rely on", () => {
    expect(parseJson("9223372036854775808")).toBe(9223372036854775808n);
    expect(parseJson("18446744073709551615")).toBe(18446744073709551615n);
    expect(parseJson("-9223372036854775808")).toBe(-9223372036854775808n);
    expect(typeof parseJson("9.223372036854775808e18")).toBe("number");
    expect(typeof parseJson("18446744073709551616")).toBe("number");
    expect(Object.is(parseJson("-0"), -0)).toBe(true);
  });

  table([
    ["greater_than", "18446744073709551615", "9223372036854775807", "True"],
    ["less_than", "9223372036854775807", "18446744073709551615", "True"],
    ["greater_than", "18446744073709551615", "18446744073709551614", "True"],
    ["less_than", "-9223372036854775808", "0", "True"],
    ["less_than", "-9223372036854775808", "-9223372036854775807", "True"],
    ["greater_than", "9007199254740993", "9007199254740992", "True"],
    ["equals", "9007199254740993", "9007199254740992", "False"],
    ["greater_than", "1e-9", "0", "True"],
    ["less_than", "0", "1e-9", "True"],
    ["equals", "-0.0", "0.0", "True"],
    ["equals", "-0", "0", "True"],
    ["not_equals", "-0.0", "0.0", "False"],
    ["greater_than", "-0.0", "0.0", "False"],
    ["less_than", "-0.0", "0.0", "False"],
    ["greater_than_or_equal", "-0.0", "0.0", "True"],
    ["less_than_or_equal", "-0", "0", "True"],
    // The float's shortest round-trip decimal is 9223372036854776000, above the integer 2^63.
    ["equals", "9.223372036854775808e18", "9223372036854775808", "False"],
    ["greater_than", "9.223372036854775808e18", "9223372036854775808", "True"],
    ["less_than", "9223372036854775808", "9.223372036854775808e18", "True"],
    ["equals", "9.223372036854775808e18", "9223372036854776000", "True"],
    ["equals", "18446744073709551616", "18446744073709551616.0", "True"],
    ["greater_than", "18446744073709551616", "18446744073709551615", "True"],
    ["greater_than", "1e308", "18446744073709551615", "True"],
    ["greater_than", "5e-324", "0", "True"],
    ["less_than", "5e-324", "1e-323", "True"],
    ["greater_than", "5e-324", "-5e-324", "True"],
    ["equals", "2.2250738585072014e-308", "2.2250738585072014E-308", "True"],
    ["equals", "0.1", "0.1000000000000000055511151231257827", "True"],
  ]);

  it("compareDecimal orders integers and floats exactly", () => {
    expect(compareDecimal(1n, 1.0)).toBe(0);
    expect(compareDecimal(1000n, 1e3)).toBe(0);
    expect(compareDecimal(-0, 0n)).toBe(0);
    expect(compareDecimal(18446744073709551615n, 9223372036854775807n)).toBe(1);
    expect(compareDecimal(-9223372036854775808n, 0n)).toBe(-1);
    // 2 ** 63 is the float 9.223372036854775808e18, whose shortest decimal is 9223372036854776000.
    expect(compareDecimal(2 ** 63, 2n ** 63n)).toBe(1);
    expect(compareDecimal(1e21, 1000000000000000000000n)).toBe(0);
    expect(compareDecimal(1e-7, 0.0000001)).toBe(0);
    expect(compareDecimal(Number.NaN, 0n)).toBeUndefined();
    expect(compareDecimal(Number.POSITIVE_INFINITY, 0n)).toBeUndefined();
  });
});

describe("lex_* comparators (engine §3.2, §B.10)", () => {
  table([
    ["lex_greater_than", '"b"', '"a"', "True"],
    ["lex_greater_than", '"a"', '"b"', "False"],
    ["lex_greater_than", '"a"', '"a"', "False"],
    ["lex_greater_than_or_equal", '"a"', '"a"', "True"],
    ["lex_greater_than_or_equal", '"a"', '"b"', "False"],
    ["lex_less_than", '"a"', '"b"', "True"],
    ["lex_less_than", '"b"', '"a"', "False"],
    ["lex_less_than_or_equal", '"a"', '"a"', "True"],
    ["lex_less_than_or_equal", '"b"', '"a"', "False"],
    ["lex_less_than", '"Z"', '"a"', "True"],
    ["lex_less_than", '""', '"a"', "True"],
    ["lex_greater_than", '"ab"', '"a"', "True"],
    ["lex_less_than", '"10"', '"9"', "True"],
    ["lex_less_than", '"2024-01-01T01:00:00+01:00"', '"2024-01-01T00:00:00Z"', "False"],
    // U+1F600 (a surrogate pair in UTF-16) sorts above U+FFFF by code point, unlike JavaScript's `<`.
    ["lex_greater_than", '"\\ud83d\\ude00"', '"\\uffff"', "True"],
    ["lex_less_than", '"\\ud83d\\ude00"', '"\\uffff"', "False"],
    ["lex_less_than", '"\\ue000"', '"\\ud800\\udc00"', "True"],
    ["lex_greater_than", '"a\\ud83d\\ude00"', '"a\\uffffz"', "True"],
    ["lex_less_than", '"\\u00e9"', '"\\u0800"', "True"],
    ["lex_greater_than", "1", "0", "Unknown"],
    ["lex_less_than", '"1"', "2", "Unknown"],
    ["lex_less_than_or_equal", "null", '"a"', "Unknown"],
    ["lex_greater_than_or_equal", '["a"]', '["a"]', "Unknown"],
  ]);

  it("differs from UTF-16 order exactly where the reference says", () => {
    expect("\u{1F600}" < "\uFFFF").toBe(true);
    expect(compareCodePoints("\u{1F600}", "\uFFFF")).toBe(1);
    expect(compareCodePoints("\uFFFF", "\u{1F600}")).toBe(-1);
    expect(compareCodePoints("\u{10000}", "\u{10001}")).toBe(-1);
    expect(compareCodePoints("abc", "abc")).toBe(0);
  });
});

describe("contains (engine §3.2)", () => {
  table([
    ["contains", '"hello world"', '"world"', "True"],
    ["contains", '"hello world"', '"World"', "False"],
    ["contains", '"Hello"', '"hello"', "False"],
    ["contains", '"abc"', '""', "True"],
    ["contains", '""', '""', "True"],
    ["contains", '""', '"a"', "False"],
    ["contains", '"a\\ud83d\\ude00b"', '"\\ud83d\\ude00"', "True"],
    ["contains", "[1,2,3]", "[3,1]", "True"],
    ["contains", "[1,2,3]", "[4]", "False"],
    ["contains", "[1,2,3]", "[1,4]", "False"],
    ["contains", "[1,2]", "[1,1,1]", "True"],
    ["contains", "[1,2]", "[]", "True"],
    ["contains", "[]", "[]", "True"],
    ["contains", "[]", "[1]", "False"],
    ["contains", "[1]", "[1.0]", "False"],
    ["contains", "[1.0]", "[1.00]", "True"],
    ["contains", '[[1],{"a":1}]', '[{"a":1}]', "True"],
    ["contains", '[[1],{"a":1}]', "[[1]]", "True"],
    ["contains", "[[1,2]]", "[1]", "False"],
    ["contains", '["a","b"]', '["a"]', "True"],
    ["contains", '"abc"', '["a"]', "Unknown"],
    ["contains", '["a"]', '"a"', "Unknown"],
    ["contains", "5", "5", "Unknown"],
    ["contains", '{"a":1}', '{"a":1}', "Unknown"],
    ["contains", '{"a":1}', '"a"', "Unknown"],
    ["contains", "null", "null", "Unknown"],
  ]);
});

describe("in_set (engine §3.2)", () => {
  table([
    ["in_set", '"a"', '["a","b"]', "True"],
    ["in_set", '"c"', '["a","b"]', "False"],
    ["in_set", "1", "[1,2]", "True"],
    ["in_set", "1", "[1.0]", "False"],
    ["in_set", "1.0", "[1]", "False"],
    ["in_set", "1.0", "[1.0]", "True"],
    ["in_set", "-0.0", "[0.0]", "True"],
    ["in_set", "1", '["1"]', "False"],
    ["in_set", "null", "[null]", "True"],
    ["in_set", "null", '[0,false,""]', "False"],
    ["in_set", "true", "[true]", "True"],
    ["in_set", "false", "[true]", "False"],
    ["in_set", '"a"', "[]", "False"],
    ["in_set", "null", "[]", "False"],
    ["in_set", "[1]", "[[1]]", "Unknown"],
    ["in_set", '{"a":1}', '[{"a":1}]', "Unknown"],
    ["in_set", '"a"', '"a"', "Unknown"],
    ["in_set", '"a"', '{"a":"a"}', "Unknown"],
    ["in_set", "1", "1", "Unknown"],
  ]);
});

describe("deep_equals / deep_not_equals (engine §3.2)", () => {
  table([
    ["deep_equals", "[1,2]", "[1,2]", "True"],
    ["deep_equals", "[1,2]", "[2,1]", "False"],
    ["deep_equals", "[]", "[]", "True"],
    ["deep_equals", "{}", "{}", "True"],
    ["deep_equals", '{"a":[1,{"b":2}],"c":null}', '{"c":null,"a":[1,{"b":2}]}', "True"],
    ["deep_equals", '{"a":1}', '{"a":1,"b":1}', "False"],
    ["deep_equals", "[1]", "[1.0]", "False"],
    ["deep_equals", "[-0.0]", "[0.0]", "True"],
    ["deep_not_equals", "[1,2]", "[1,2]", "False"],
    ["deep_not_equals", "[1]", "[1.0]", "True"],
    ["deep_not_equals", '{"a":1}', '{"a":2}', "True"],
    ["deep_equals", '{"a":1}', '"a"', "Unknown"],
    ["deep_equals", "[]", "{}", "Unknown"],
    ["deep_not_equals", "[]", "{}", "Unknown"],
    ["deep_equals", '"a"', '"a"', "Unknown"],
    ["deep_equals", "1", "1", "Unknown"],
    ["deep_not_equals", "null", "null", "Unknown"],
  ]);
});

describe("RFC 3339 date-times (engine §3.4)", () => {
  it("accepts any single-byte separator: T, t, space, X", () => {
    for (const separator of ["T", "t", " ", "X", "_", "\u0000"]) {
      expectSameInstant(`2024-01-01${separator}12:00:00Z`, "2024-01-01T12:00:00Z");
    }
    expect(ordering("greater_than", "2024-01-02X00:00:00Z", "2024-01-01t23:59:59z")).toBe("True");
  });

  it("rejects a multi-byte separator and a missing separator", () => {
    expect(parseDateTime("2024-01-01\u00e912:00:00Z")).toBeUndefined();
    expect(parseDateTime("2024-01-01\u{1F600}12:00:00Z")).toBeUndefined();
    expect(parseDateTime("2024-01-0112:00:00Z")).toBeUndefined();
    expectUnordered("2024-01-01\u00e912:00:00Z", "2024-01-01T12:00:00Z");
  });

  it("takes one or more fraction digits and ignores everything after the ninth", () => {
    expect(parseDateTime("1970-01-01T00:00:00.1Z")).toBe(100_000_000n);
    expect(parseDateTime("1970-01-01T00:00:00.000000001Z")).toBe(1n);
    expect(parseDateTime("1970-01-01T00:00:00.1234567891Z")).toBe(123_456_789n);
    expect(parseDateTime("1970-01-01T00:00:00.123456789999999999999Z")).toBe(123_456_789n);
    expect(parseDateTime("1970-01-01T00:00:00.Z")).toBeUndefined();
    expect(parseDateTime("1970-01-01T00:00:00,5Z")).toBeUndefined();
    expectSameInstant("2024-01-01T00:00:00.1234567891Z", "2024-01-01T00:00:00.123456789Z");
    expectSameInstant("2024-01-01T00:00:00.5Z", "2024-01-01T00:00:00.500Z");
    expect(ordering("greater_than", "2024-01-01T00:00:00.000000001Z", "2024-01-01T00:00:00Z")).toBe("True");
  });

  it("compares offsets as UTC instants", () => {
    expectSameInstant("2024-01-01T01:00:00+01:00", "2024-01-01T00:00:00Z");
    expectSameInstant("2023-12-31T18:30:00-05:30", "2024-01-01T00:00:00z");
    expectSameInstant("2024-01-01T00:00:00-00:00", "2024-01-01T00:00:00+00:00");
    expectSameInstant("2024-01-01T23:59:00+23:59", "2024-01-01T00:00:00Z");
    expect(ordering("less_than", "2024-01-01T01:00:00+02:00", "2024-01-01T00:00:00Z")).toBe("True");
    expect(parseDateTime("1970-01-01T00:00:00+01:00")).toBe(-3_600_000_000_000n);
  });

  it.each([
    ["offset hour 24", "2024-01-01T00:00:00+24:00"],
    ["offset minute 60", "2024-01-01T00:00:00+00:60"],
    ["offset without colon", "2024-01-01T00:00:00+0100"],
    ["offset with one-digit hour", "2024-01-01T00:00:00+1:00"],
    ["missing offset", "2024-01-01T00:00:00"],
    ["trailing character", "2024-01-01T00:00:00Z "],
    ["trailing newline", "2024-01-01T00:00:00Z\n"],
    ["leading space", " 2024-01-01T00:00:00Z"],
    ["five-digit year", "20240-01-01T00:00:00Z"],
    ["signed year", "+2024-01-01T00:00:00Z"],
    ["one-digit month", "2024-1-01T00:00:00Z"],
    ["one-digit hour", "2024-01-01T0:00:00Z"],
    ["missing seconds", "2024-01-01T00:00Z"],
    ["month 13", "2024-13-01T00:00:00Z"],
    ["month 00", "2024-00-01T00:00:00Z"],
    ["day 00", "2024-01-00T00:00:00Z"],
    ["day 32", "2024-01-32T00:00:00Z"],
    ["30 February", "2024-02-30T00:00:00Z"],
    ["29 February 2023", "2023-02-29T00:00:00Z"],
    ["29 February 1900", "1900-02-29T00:00:00Z"],
    ["31 April", "2024-04-31T00:00:00Z"],
    ["hour 24", "2024-01-01T24:00:00Z"],
    ["minute 60", "2024-01-01T00:60:00Z"],
    ["second 61", "2024-01-01T00:00:61Z"],
    ["non-ASCII digit", "2024-01-01T00:00:0\u0661Z"],
  ])("rejects %s", (_label, text) => {
    expect(parseDateTime(text)).toBeUndefined();
  });

  it("accepts the calendar edges", () => {
    expect(parseDateTime("2024-02-29T00:00:00Z")).toBeDefined();
    expect(parseDateTime("2000-02-29T00:00:00Z")).toBeDefined();
    expect(parseDateTime("0000-01-01T00:00:00Z")).toBe(-62_167_219_200n * 1_000_000_000n);
    expect(parseDateTime("9999-12-31T23:59:59.999999999Z")).toBe(253_402_300_799_999_999_999n);
    expect(parseDateTime("1970-01-01T00:00:00Z")).toBe(0n);
    expect(parseDateTime("2024-01-01T00:00:00-23:59")).toBeDefined();
  });

  it("accepts second 60 only as 23:59:60 UTC on the last day of a month, as :59.999999999", () => {
    const stand = parseDateTime("2016-12-31T23:59:59.999999999Z");
    expect(parseDateTime("2016-12-31T23:59:60Z")).toBe(stand);
    expect(parseDateTime("2016-12-31T23:59:60.5Z")).toBe(stand);
    expect(parseDateTime("2017-01-01T00:59:60+01:00")).toBe(stand);
    expect(parseDateTime("2016-12-31T18:59:60-05:00")).toBe(stand);
    expect(parseDateTime("2016-06-30T23:59:60Z")).toBeDefined();
    expect(parseDateTime("2023-02-28T23:59:60Z")).toBeDefined();
    expect(parseDateTime("2024-02-29T23:59:60Z")).toBeDefined();
    expect(parseDateTime("2024-02-28T23:59:60Z")).toBeUndefined();
    expect(parseDateTime("2016-12-30T23:59:60Z")).toBeUndefined();
    expect(parseDateTime("2016-12-31T22:59:60Z")).toBeUndefined();
    expect(parseDateTime("2016-12-31T23:58:60Z")).toBeUndefined();
    expect(parseDateTime("2016-12-31T23:59:60+01:00")).toBeUndefined();

    expect(ordering("greater_than", "2016-12-31T23:59:60Z", "2016-12-31T23:59:59.999999998Z")).toBe("True");
    expect(ordering("less_than", "2016-12-31T23:59:60Z", "2017-01-01T00:00:00Z")).toBe("True");
    expectSameInstant("2016-12-31T23:59:60Z", "2016-12-31T23:59:59.999999999Z");
    expectUnordered("2016-12-30T23:59:60Z", "2016-12-30T23:59:59Z");
  });
});

describe("date-only values (engine §3.4)", () => {
  it("orders dates", () => {
    expect(ordering("greater_than", "2024-01-02", "2024-01-01")).toBe("True");
    expect(ordering("less_than", "2023-12-31", "2024-01-01")).toBe("True");
    expect(ordering("greater_than", "2024-03-01", "2024-02-29")).toBe("True");
    expectSameInstant("2024-01-01", "2024-01-01");
  });

  it("parses leniently like Rust integer parsing", () => {
    expectSameInstant("2024-1-5", "2024-01-05");
    expectSameInstant("+2024-01-05", "2024-01-05");
    expectSameInstant("002024-001-0005", "2024-01-05");
    expectSameInstant("2024-+1-+5", "2024-01-05");
    expect(parseDateOnly("1970-01-01")).toBe(0);
    expect(parseDateOnly("0-1-1")).toBe(-719_528);
    expect(parseDateOnly("9999-12-31")).toBe(2_932_896);
  });

  it.each([
    ["two parts", "2024-01"],
    ["four parts", "2024-01-01-01"],
    ["negative year", "-2024-01-05"],
    ["empty part", "2024--05"],
    ["bare plus", "+-01-05"],
    ["double plus", "++2024-01-05"],
    ["whitespace", " 2024-01-05"],
    ["trailing whitespace", "2024-01-05 "],
    ["underscore", "2_024-01-05"],
    ["year 10000", "10000-01-01"],
    ["year beyond i32", "99999999999-01-01"],
    ["month 0", "2024-0-10"],
    ["month 13", "2024-13-01"],
    ["month 256", "2024-256-01"],
    ["day 0", "2024-01-00"],
    ["30 February", "2024-02-30"],
    ["29 February 2023", "2023-02-29"],
    ["31 June", "2024-06-31"],
    ["slashes", "2024/01/05"],
    ["a date-time", "2024-01-05T00:00:00Z"],
  ])("rejects %s", (_label, text) => {
    expect(parseDateOnly(text)).toBeUndefined();
  });

  it("never mixes a date-time with a date", () => {
    expectUnordered("2024-01-02", "2024-01-01T00:00:00Z");
    expectUnordered("2024-01-01T00:00:00Z", "2024-01-02");
    expect(compareTemporal("2024-01-01T00:00:00Z", "2024-01-01")).toBeUndefined();
    expect(compareTemporal("2024-01-01", "not a date")).toBeUndefined();
  });
});

describe("subtle behaviours (engine §B items 7–11)", () => {
  it("7: a missing value without an error gives exists=False and not_exists=True", () => {
    expect(evaluateComparator("exists", undefined, null)).toBe("False");
    expect(evaluateComparator("not_exists", undefined, null)).toBe("True");
  });

  it("8: no expected value is Unknown for every value comparator; in_set [null] tests for null", () => {
    for (const comparator of VALUE_COMPARATORS) expect(evaluate(comparator, "null", undefined)).toBe("Unknown");
    expect(evaluate("in_set", "null", "[null]")).toBe("True");
    expect(evaluate("in_set", "0", "[null]")).toBe("False");
  });

  it("9: numeric equals is decimal, the other equalities are variant-sensitive, big integers stay exact", () => {
    expect(evaluate("equals", "1", "1.0")).toBe("True");
    expect(evaluate("in_set", "1", "[1.0]")).toBe("False");
    expect(evaluate("contains", "[1]", "[1.0]")).toBe("False");
    expect(evaluate("deep_equals", "[1]", "[1.0]")).toBe("False");
    expect(evaluate("equals", "9007199254740993", "9007199254740993")).toBe("True");
    expect(evaluate("in_set", "9007199254740993", "[9007199254740992]")).toBe("False");
  });

  it("10: ordering strings understands dates only; lex_* is by code point", () => {
    expect(evaluate("greater_than", '"b"', '"a"')).toBe("Unknown");
    expect(evaluate("greater_than", '"2024-01-02X00:00:00Z"', '"2024-01-01"')).toBe("Unknown");
    expect(evaluate("greater_than", '"2024-1-2"', '"2024-01-01"')).toBe("True");
    expect(evaluate("lex_greater_than", '"\\ud83d\\ude00"', '"\\uffff"')).toBe("True");
  });

  it("11: bytes evidence supports only equals/not_equals against 0..255 integers", () => {
    const value: EvidenceValue = { kind: "bytes", value: Uint8Array.of(9) };
    expect(evaluateComparator("equals", parseJson("[9]"), value)).toBe("True");
    expect(evaluateComparator("not_equals", parseJson("[9]"), value)).toBe("False");
    expect(evaluateComparator("in_set", parseJson("[9]"), value)).toBe("Unknown");
    expect(evaluateComparator("equals", parseJson("[9.0]"), value)).toBe("Unknown");
  });
});
