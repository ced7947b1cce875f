import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DecisionGateError, JsonParseError } from "../../src/core/errors.js";
import { ScenarioSpec } from "../../src/core/spec/schema.js";
import { decode } from "../../src/core/wire/common.js";
import { MAX_JSON_DEPTH, parseJson, parseJsonBytes } from "../../src/json/parse.js";
import { jsonEquals } from "../../src/json/value.js";
import { canonicalJson, compactJson } from "../../src/json/write.js";

describe("lossless parsing", () => {
  it("keeps integers exact and tells them from floats", () => {
    expect(parseJson("18446744073709551615")).toBe(18446744073709551615n);
    expect(parseJson("-9223372036854775808")).toBe(-9223372036854775808n);
    expect(parseJson("9007199254740993")).toBe(9007199254740993n);
    expect(parseJson("1")).toBe(1n);
    expect(parseJson("1.0")).toBe(1);
    expect(parseJson("1e2")).toBe(100);
    expect(Object.is(parseJson("-0"), -0)).toBe(true);
    expect(parseJson("-0.0")).toBe(-0);
  });

  it("turns integers beyond u64 and i64 into floats, as serde_json does", () => {
    expect(parseJson("18446744073709551616")).toBe(2 ** 64);
    expect(parseJson("-9223372036854775809")).toBe(-(2 ** 63));
  });

  it("keeps `1` and `1.0` apart under structural equality but hashes them alike", () => {
    expect(jsonEquals(parseJson("[1]"), parseJson("[1.0]"))).toBe(false);
    expect(canonicalJson(parseJson("[1]"))).toBe(canonicalJson(parseJson("[1.0]")));
  });

  it("decodes escapes, keeps duplicate keys last-wins and never touches the prototype", () => {
    expect(parseJson('"a\\u00e9\\ud83d\\ude00\\n\\/"')).toBe("aé😀\n/");
    expect(parseJson('{"a":1,"a":2}')).toEqual({ a: 2n });
    const value = parseJson('{"__proto__":{"polluted":true}}') as Record<string, unknown>;
    expect(Object.keys(value)).toEqual(["__proto__"]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(compactJson(parseJson('{"b":1,"a":[true,null]}'))).toBe('{"b":1,"a":[true,null]}');
  });

  it("accepts nesting up to the limit and refuses one level more", () => {
    const nested = (depth: number) => `${"[".repeat(depth)}${"]".repeat(depth)}`;
    expect(() => parseJson(nested(MAX_JSON_DEPTH))).not.toThrow();
    expect(() => parseJson(nested(MAX_JSON_DEPTH + 1))).toThrow(/nesting deeper than 128 levels/);
  });

  const refused: Array<[string, RegExp]> = [
    ["", /unexpected end of input/],
    ["1e400", /number out of range/],
    ['"\\ud800"', /unpaired surrogate/],
    ['"\\udc00x"', /unpaired surrogate/],
    ['"\\ud800\\u0041"', /unpaired surrogate/],
    ["[1,]", /unexpected character/],
    ['{"a" 1}', /expected ':'/],
    ["01", /trailing characters/],
    ["tru", /invalid literal/],
    ['"a\nb"', /control character/],
    ['"\\x"', /invalid escape/],
    ['"abc', /unterminated string/],
    ["{} {}", /trailing characters/],
    ["NaN", /unexpected character/],
  ];
  for (const [text, reason] of refused) {
    it(`refuses ${JSON.stringify(text)} with a typed error and position`, () => {
      expect(() => parseJson(text)).toThrow(JsonParseError);
      expect(() => parseJson(text)).toThrow(reason);
      expect(() => parseJson(text)).toThrow(/at line \d+ column \d+/);
    });
  }

  it("refuses a byte-order mark and invalid UTF-8", () => {
    expect(() => parseJsonBytes(Buffer.from("\ufeff{}", "utf8"))).toThrow(JsonParseError);
    expect(() => parseJsonBytes(Uint8Array.from([0x22, 0xff, 0x22]))).toThrow(/not valid UTF-8/);
  });
});

describe("hostile input only ever gets typed errors", () => {
  it("arbitrary text", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 64 }), (text) => {
        try {
          parseJson(text);
        } catch (error) {
          expect(error).toBeInstanceOf(JsonParseError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("mutated valid JSON", () => {
    const base = '{"a":[1,2.5,"x\\n",{"b":null,"c":true}],"d":-0,"e":18446744073709551615}';
    fc.assert(
      fc.property(fc.nat(base.length - 1), fc.string({ minLength: 0, maxLength: 3 }), (at, insert) => {
        const text = base.slice(0, at) + insert + base.slice(at + 1);
        try {
          parseJson(text);
        } catch (error) {
          expect(error).toBeInstanceOf(JsonParseError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("arbitrary JSON decoded as a scenario spec", () => {
    fc.assert(
      fc.property(fc.json({ maxDepth: 4 }), (text) => {
        try {
          decode(ScenarioSpec, parseJson(text), "spec");
        } catch (error) {
          expect(error).toBeInstanceOf(DecisionGateError);
          expect((error as DecisionGateError).code).toBe("invalid_input");
        }
      }),
      { numRuns: 500 },
    );
  });

  it("parse and canonical write round-trip", () => {
    fc.assert(
      fc.property(fc.json({ maxDepth: 5 }), (text) => {
        const canonical = canonicalJson(parseJson(text));
        expect(canonicalJson(parseJson(canonical))).toBe(canonical);
        expect(parseJson(canonical)).toEqual(parseJson(compactJson(parseJson(text))));
      }),
      { numRuns: 1000 },
    );
  });
});
