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
