import { describe, expect, it } from "vitest";
import {
  actionFor,
  capabilitiesFor,
  DEFAULT_CAPABILITIES,
  isRuntimeDecision,
  RUNTIME_DECISIONS,
} from "../../src/actions/capabilities.js";
import {
  fromLosslessJson,
  parsePlainObject,
  sortedCompactJson,
  sortedJsonSha256,
} from "../../src/actions/sorted-json.js";
import { parseJson } from "../../src/json/parse.js";

describe("Stage356 canonicalization (Python sort_keys, compact, UTF-8)", () => {
  it("matches Python's json.dumps on ordering, escapes, non-ASCII text and safe integers", () => {
    const value = fromLosslessJson(
      parseJson(
        '{"b":[1,-2,true,false,null],"a b":"x","a!":"y","a":{"z":"\\u00e9\\u2028\\u007f",' +
          '"y":"q\\"\\\\\\n\\t\\b\\f\\r\\u0001\\u001f"},"":9007199254740991,"A":"\\ud83d\\ude00"}',
      ),
    );
    if (value === undefined) throw new Error("refused");
    // Produced by python3: json.dumps(o, ensure_ascii=False, sort_keys=True, separators=(",", ":")).
    expect(sortedCompactJson(value)).toBe(
      '{"":9007199254740991,"A":"\u{1F600}","a":{"y":"q\\"\\\\\\n\\t\\b\\f\\r\\u0001\\u001f","z":"\u00e9\u2028\u007f"},' +
        '"a b":"x","a!":"y","b":[1,-2,true,false,null]}',
    );
    expect(sortedJsonSha256(value)).toBe("1dfbf0b96d7d3fb131ec3c3ec2cde1480c0eafd2d19312cce8a975e6e55bed90");
  });

  it("refuses what it would canonicalize differently: floats, non-ASCII keys, integers beyond 2^53", () => {
    for (const text of ['{"a":1.0}', '{"a":1e2}', '{"é":1}', '{"a":9007199254740992}', '{"a":[-0.5]}']) {
      expect(fromLosslessJson(parseJson(text)), text).toBeUndefined();
      expect(parsePlainObject(Buffer.from(text)), text).toBeUndefined();
    }
    expect(() => sortedCompactJson({ a: 0.5 })).toThrow(/safe integers/);
    expect(() => sortedCompactJson({ ü: 1 })).toThrow(/non-ASCII/);
  });

  it("reads only JSON objects", () => {
    expect(parsePlainObject(Buffer.from("[1]"))).toBeUndefined();
    expect(parsePlainObject(Buffer.from("{"))).toBeUndefined();
    expect(parsePlainObject(Buffer.from([0xff]))).toBeUndefined();
    expect(parsePlainObject(Buffer.from('{"stage":356}'))).toEqual({ stage: 356 });
  });
});

describe("runtime decision → action → capabilities", () => {
  it("maps allow, warn and block to continue, isolate_and_continue and terminate", () => {
    expect(RUNTIME_DECISIONS.map(actionFor)).toEqual(["continue", "isolate_and_continue", "terminate"]);
    expect(isRuntimeDecision("warn")).toBe(true);
    expect(isRuntimeDecision("deny")).toBe(false);
  });

  it("keeps everything on continue, the allowed set on isolate, nothing on terminate", () => {
    const all = ["private_runner", "public_metadata_verification", "secret_material_access", "unsafe_payload_fetch"];
    expect(capabilitiesFor("allow")).toEqual({ allowed: all, isolated: [] });
    expect(capabilitiesFor("warn")).toEqual({
      allowed: ["public_metadata_verification"],
      isolated: ["private_runner", "unsafe_payload_fetch", "secret_material_access"],
    });
    expect(capabilitiesFor("block")).toEqual({ allowed: [], isolated: all });
  });

  it("uses configured capability names and never hands out the shared arrays", () => {
    const caps = { allowed: ["read"], isolated: ["write", "read"] };
    expect(capabilitiesFor("allow", caps)).toEqual({ allowed: ["read", "write"], isolated: [] });
    const warned = capabilitiesFor("warn");
    warned.allowed.push("x");
    expect(DEFAULT_CAPABILITIES.allowed).toEqual(["public_metadata_verification"]);
  });
});
