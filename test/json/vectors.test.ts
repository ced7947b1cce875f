import { describe, expect, it } from "vitest";
import { specHash } from "../../src/core/spec/hash.js";
import { ScenarioSpec } from "../../src/core/spec/schema.js";
import { decode } from "../../src/core/wire/common.js";
import { sha256Hex } from "../../src/json/hash.js";
import { parseJson } from "../../src/json/parse.js";
import { canonicalJson } from "../../src/json/write.js";
import { readSharedJson } from "../support/shared.js";

interface HashVector {
  name: string;
  input: string;
  sha256: string;
  canonical?: string;
}

const vectors = readSharedJson("spec/vectors/canonical-json.json") as unknown as {
  hash_vectors: HashVector[];
  canonical_text_vectors: HashVector[];
};

describe("canonical JSON vectors", () => {
  for (const vector of [...vectors.hash_vectors, ...vectors.canonical_text_vectors]) {
    it(`${vector.name}`, () => {
      const canonical = canonicalJson(parseJson(vector.input));
      if (vector.canonical !== undefined) expect(canonical).toBe(vector.canonical);
      expect(sha256Hex(canonical)).toBe(vector.sha256);
    });
  }
});

describe("spec_hash vectors", () => {
  const specs = readSharedJson("spec/vectors/spec-hashes.json") as unknown as Array<{
    name: string;
    spec: unknown;
    spec_hash: string;
  }>;
  for (const vector of specs) {
    it(vector.name, () => {
      const spec = decode(ScenarioSpec, vector.spec, "spec");
      expect(specHash(spec).value).toBe(vector.spec_hash);
    });
  }
});

describe("canonical key order", () => {
  /** The reference rule, written out: members sorted by the UTF-8 bytes of their escaped key text. */
  function reference(value: Record<string, unknown>): string {
    const members = Object.keys(value).map((key) => [JSON.stringify(key), key] as const);
    members.sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    return `{${members.map(([escaped, key]) => `${escaped}:${JSON.stringify(value[key])}`).join(",")}}`;
  }

  it("is the same for every insertion order and for key lists that only concatenate alike", () => {
    const objects: Array<Record<string, unknown>> = [
      { b: 1, a: 2, c: 3 },
      { c: 3, a: 2, b: 1 },
      { "1:a": 1, b: 2 },
      { "1": 1, "a1:b": 2 },
      { é: 1, z: 2, "\u0001": 3, '"': 4 },
      { z: 2, é: 1, '"': 4, "\u0001": 3 },
      { ["k".repeat(2000)]: 1, a: 2 },
      { a: 2, ["k".repeat(2000)]: 1 },
    ];
    for (let round = 0; round < 2; round++) {
      for (const object of objects) expect(canonicalJson(object as never)).toBe(reference(object));
    }
    expect(canonicalJson({ b: 1, a: undefined, c: 2 } as never)).toBe('{"b":1,"c":2}');
  });
});
