import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compareCodePoints, evaluateComparator } from "../../src/core/compare/comparator.js";
import { parseDateTime } from "../../src/core/compare/datetime.js";
import { compareDecimal } from "../../src/core/compare/decimal.js";
import type { Comparator } from "../../src/core/spec/schema.js";
import type { TriState } from "../../src/core/wire/common.js";
import { I64_MIN, type JsonValue, U64_MAX } from "../../src/json/value.js";

const integer = fc.bigInt({ min: I64_MIN, max: U64_MAX });
const float = fc.double({ noNaN: true, noDefaultInfinity: true });
const jsonNumber = fc.oneof(integer, float);
const scalar: fc.Arbitrary<JsonValue> = fc.oneof(fc.constant(null), fc.boolean(), fc.string(), jsonNumber);

const jsonValue: fc.Arbitrary<JsonValue> = fc.letrec<{ value: JsonValue }>((tie) => ({
  value: fc.oneof(
    { maxDepth: 3, depthIdentifier: "json" },
    scalar,
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(fc.string({ maxLength: 3 }), tie("value"), { maxKeys: 4 }),
  ),
})).value;

/** Pairs that are often equal (a value against a re-parse-equivalent copy) as well as random pairs. */
const jsonPair = fc.oneof(
  fc.tuple(jsonValue, jsonValue),
  jsonValue.map((value): [JsonValue, JsonValue] => [value, structuredClone(value)]),
);

function pad(value: number, width: number): string {
  return String(value).padStart(width, "0");
}

/** RFC 3339 date-times with every accepted variation: separators, fractions of any length, offsets. */
const dateTime = fc
  .record({
    year: fc.integer({ min: 0, max: 9999 }),
    month: fc.integer({ min: 1, max: 12 }),
    day: fc.integer({ min: 1, max: 28 }),
    hour: fc.integer({ min: 0, max: 23 }),
    minute: fc.integer({ min: 0, max: 59 }),
    second: fc.integer({ min: 0, max: 59 }),
    separator: fc.constantFrom("T", "t", " ", "X"),
    fraction: fc.option(fc.stringMatching(/^[0-9]{1,12}$/), { nil: undefined }),
    offset: fc.oneof(
      fc.constantFrom("Z", "z"),
      fc
        .tuple(fc.constantFrom("+", "-"), fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 }))
        .map(([sign, hours, minutes]) => `${sign}${pad(hours, 2)}:${pad(minutes, 2)}`),
    ),
  })
  .map(
    (parts) =>
      `${pad(parts.year, 4)}-${pad(parts.month, 2)}-${pad(parts.day, 2)}${parts.separator}` +
      `${pad(parts.hour, 2)}:${pad(parts.minute, 2)}:${pad(parts.second, 2)}` +
      `${parts.fraction === undefined ? "" : `.${parts.fraction}`}${parts.offset}`,
  );

/** Date-only values, including the lenient spellings (no padding, extra zeros, leading `+`). */
const dateOnly = fc
  .tuple(
    fc.integer({ min: 0, max: 9999 }),
    fc.integer({ min: 1, max: 12 }),
    fc.integer({ min: 1, max: 28 }),
    fc.constantFrom("", "+"),
    fc.integer({ min: 0, max: 4 }),
  )
  .map(([year, month, day, plus, width]) => `${plus}${pad(year, width)}-${pad(month, width % 3)}-${pad(day, 2)}`);

const temporal = fc.oneof(dateTime, dateOnly);

function json(value: JsonValue, comparator: Comparator, expected: JsonValue): TriState {
  return evaluateComparator(comparator, expected, { kind: "json", value });
}

function sign(value: number): number {
  return value < 0 ? -1 : value > 0 ? 1 : 0;
}

describe("comparator properties", () => {
  it("equals and not_equals are complements on all JSON inputs", () => {
    fc.assert(
      fc.property(jsonPair, ([e, x]) => {
        const equal = json(e, "equals", x);
        const notEqual = json(e, "not_equals", x);
        expect(equal).not.toBe("Unknown");
        expect(notEqual).toBe(equal === "True" ? "False" : "True");
      }),
    );
  });

  it("equals is symmetric in E and X", () => {
    fc.assert(
      fc.property(jsonPair, ([e, x]) => {
        expect(json(e, "equals", x)).toBe(json(x, "equals", e));
      }),
    );
  });

  it("deep_equals and deep_not_equals are complements where defined", () => {
    fc.assert(
      fc.property(jsonPair, ([e, x]) => {
        const equal = json(e, "deep_equals", x);
        const notEqual = json(e, "deep_not_equals", x);
        if (equal === "Unknown") expect(notEqual).toBe("Unknown");
        else expect(notEqual).toBe(equal === "True" ? "False" : "True");
      }),
    );
  });

  const orderingPairs: [Comparator, Comparator][] = [
    ["greater_than", "less_than"],
    ["greater_than_or_equal", "less_than_or_equal"],
  ];

  it("greater_than(E, X) == less_than(X, E), and gte/lte likewise, for numbers", () => {
    fc.assert(
      fc.property(jsonNumber, jsonNumber, (e, x) => {
        for (const [forward, backward] of orderingPairs) expect(json(e, forward, x)).toBe(json(x, backward, e));
      }),
    );
  });

  it("greater_than(E, X) == less_than(X, E), and gte/lte likewise, for date strings", () => {
    fc.assert(
      fc.property(temporal, temporal, (e, x) => {
        for (const [forward, backward] of orderingPairs) expect(json(e, forward, x)).toBe(json(x, backward, e));
      }),
    );
  });

  it("exactly one of less_than, equals, greater_than holds for two numbers", () => {
    fc.assert(
      fc.property(jsonNumber, jsonNumber, (e, x) => {
        const results = [json(e, "less_than", x), json(e, "equals", x), json(e, "greater_than", x)];
        expect(results.filter((result) => result === "True")).toHaveLength(1);
        expect(results).not.toContain("Unknown");
      }),
    );
  });

  it("two date-times or two dates are always ordered, one each way is never", () => {
    fc.assert(
      fc.property(dateTime, dateTime, dateOnly, dateOnly, (a, b, c, d) => {
        expect(json(a, "less_than_or_equal", b)).not.toBe("Unknown");
        expect(json(c, "less_than_or_equal", d)).not.toBe("Unknown");
        expect(json(a, "less_than_or_equal", c)).toBe("Unknown");
      }),
    );
  });

  it("date-time instants agree with the JS Date clock", () => {
    fc.assert(
      fc.property(
        fc.date({
          min: new Date("0000-01-01T00:00:00Z"),
          max: new Date("9999-12-31T23:59:59.999Z"),
          noInvalidDate: true,
        }),
        fc.integer({ min: -(23 * 60 + 59), max: 23 * 60 + 59 }),
        (date, offsetMinutes) => {
          const local = new Date(date.getTime() + offsetMinutes * 60_000);
          const offset = `${offsetMinutes < 0 ? "-" : "+"}${pad(Math.floor(Math.abs(offsetMinutes) / 60), 2)}:${pad(Math.abs(offsetMinutes) % 60, 2)}`;
          const text = `${pad(local.getUTCFullYear(), 4)}${local.toISOString().slice(-20, -1)}${offset}`;
          fc.pre(local.getUTCFullYear() >= 0 && local.getUTCFullYear() <= 9999);
          expect(parseDateTime(text)).toBe(BigInt(date.getTime()) * 1_000_000n);
        },
      ),
    );
  });

  it("lex_* is antisymmetric and follows UTF-8 byte order", () => {
    const text = fc.string({ unit: "binary", maxLength: 6 });
    fc.assert(
      fc.property(text, text, (a, b) => {
        expect(json(a, "lex_less_than", b)).toBe(json(b, "lex_greater_than", a));
        expect(json(a, "lex_less_than_or_equal", b)).toBe(json(b, "lex_greater_than_or_equal", a));
        const both =
          json(a, "lex_less_than_or_equal", b) === "True" && json(a, "lex_greater_than_or_equal", b) === "True";
        expect(both).toBe(a === b);
        expect(compareCodePoints(a, b)).toBe(sign(Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"))));
      }),
    );
  });

  it("in_set(E, [E]) is True for every scalar", () => {
    fc.assert(
      fc.property(scalar, (e) => {
        expect(json(e, "in_set", [e])).toBe("True");
      }),
    );
  });

  it("contains(E, []) is True for every array, and every array contains its own elements", () => {
    fc.assert(
      fc.property(fc.array(jsonValue, { maxLength: 5 }), (e) => {
        expect(json(e, "contains", [])).toBe("True");
        expect(json(e, "contains", [...e].reverse())).toBe("True");
      }),
    );
  });

  it("decimal comparison agrees with JS comparison for safe integers", () => {
    const safe = fc.maxSafeInteger();
    fc.assert(
      fc.property(safe, safe, (a, b) => {
        const expected = sign(a - b);
        expect(compareDecimal(BigInt(a), BigInt(b))).toBe(expected);
        expect(compareDecimal(BigInt(a), b)).toBe(expected);
        expect(compareDecimal(a, BigInt(b))).toBe(expected);
      }),
    );
  });

  it("decimal comparison agrees with JS comparison for floats", () => {
    fc.assert(
      fc.property(float, float, (a, b) => {
        expect(compareDecimal(a, b)).toBe(a < b ? -1 : a > b ? 1 : 0);
      }),
    );
  });

  it("decimal comparison of a safe integer and any float agrees with JS mixed comparison", () => {
    fc.assert(
      fc.property(fc.maxSafeInteger(), float, (a, b) => {
        const integer = BigInt(a);
        expect(compareDecimal(integer, b)).toBe(integer < b ? -1 : integer > b ? 1 : 0);
      }),
    );
  });
});
