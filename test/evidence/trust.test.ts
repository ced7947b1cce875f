import { createHash, generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hashes, verify as nobleVerify } from "@noble/ed25519";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import type { EvidenceContext } from "../../src/core/run/evidence.js";
import type { EvidenceResult } from "../../src/core/run/schema.js";
import { decode } from "../../src/core/wire/common.js";
import { disclosurePolicy, EvidenceConfig } from "../../src/evidence/disclosure.js";
import { EvidencePipeline } from "../../src/evidence/pipeline.js";
import { type EvidenceProvider, jsonEvidence } from "../../src/evidence/provider.js";
import { AnchorsConfig, anchorRequirements } from "../../src/evidence/trust/anchors.js";
import { verifyStrict, verifyStrictReference } from "../../src/evidence/trust/ed25519.js";
import { loadKeyring, loadPublicKey } from "../../src/evidence/trust/keys.js";
import { DevConfig, effectiveTrustPolicy, TrustConfig } from "../../src/evidence/trust/lanes.js";
import type { SignaturePolicy } from "../../src/evidence/trust/signature.js";
import { hashCanonical } from "../../src/json/hash.js";
import { parseJson } from "../../src/json/parse.js";
import type { JsonValue } from "../../src/json/value.js";
import { canonicalJson } from "../../src/json/write.js";

const hex = (text: string) => Uint8Array.from(Buffer.from(text, "hex"));
hashes.sha512 = (message) => new Uint8Array(createHash("sha512").update(message).digest());
const dir = mkdtempSync(join(tmpdir(), "dg-keys-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const context: EvidenceContext = {
  tenant_id: 1n,
  namespace_id: 2n,
  run_id: "run-1",
  scenario_id: "s",
  stage_id: "stage",
  trigger_id: "t-1",
  trigger_time: { kind: "logical", value: 1n },
  correlation_id: null,
};

describe("strict Ed25519", () => {
  // RFC 8032 §7.1, tests 1–3.
  const vectors = [
    {
      key: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
      message: "",
      signature:
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    },
    {
      key: "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
      message: "72",
      signature:
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    },
    {
      key: "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
      message: "af82",
      signature:
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    },
  ];
  const GROUP_ORDER = 2n ** 252n + 27742317777372353535851937790883648493n;
  const IDENTITY = `01${"00".repeat(31)}`;
  const ORDER_TWO = `ec${"ff".repeat(30)}7f`;

  it("accepts the RFC 8032 vectors and refuses any altered byte", () => {
    for (const vector of vectors) {
      const [signature, message, key] = [hex(vector.signature), hex(vector.message), hex(vector.key)];
      expect(verifyStrict(signature, message, key)).toBe(true);
      const altered = Uint8Array.from(signature);
      altered[10] = (altered[10] as number) ^ 1;
      expect(verifyStrict(altered, message, key)).toBe(false);
      expect(verifyStrict(signature, Uint8Array.from([...message, 0]), key)).toBe(false);
    }
  });

  it("refuses a non-canonical S (S + L), which a lenient verifier would accept", () => {
    const vector = vectors[0] as (typeof vectors)[number];
    const signature = hex(vector.signature);
    const s = BigInt(`0x${Buffer.from(signature.subarray(32)).reverse().toString("hex")}`) + GROUP_ORDER;
    const sBytes = Buffer.from(s.toString(16).padStart(64, "0"), "hex").reverse();
    const malleable = Uint8Array.from([...signature.subarray(0, 32), ...sBytes]);
    expect(verifyStrict(malleable, hex(vector.message), hex(vector.key))).toBe(false);
  });

  it("refuses small-order public keys and small-order R, even where the equation holds", () => {
    // With A and R of small order and S = 0, [S]B = R + [k]A can hold: only the small-order rule refuses it.
    const signature = hex(`${IDENTITY}${"00".repeat(32)}`);
    for (const key of [IDENTITY, ORDER_TWO]) {
      expect(verifyStrict(signature, hex("00"), hex(key))).toBe(false);
      expect(nobleVerify(signature, hex("00"), hex(key), { zip215: true })).toBe(true);
    }
    const vector = vectors[0] as (typeof vectors)[number];
    const smallR = hex(`${IDENTITY}${vector.signature.slice(64)}`);
    expect(verifyStrict(smallR, hex(vector.message), hex(vector.key))).toBe(false);
  });

  it("refuses a non-canonical encoding of the public key", () => {
    // y = p + 1 encodes the same point as y = 1 (the identity) but is not canonical.
    const nonCanonical = hex(`ee${"ff".repeat(30)}7f`);
    expect(verifyStrict(hex(vectors[0]?.signature ?? ""), new Uint8Array(), nonCanonical)).toBe(false);
  });
});

describe("the node:crypto fast path decides exactly as the pure reference verifier", () => {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const key = new Uint8Array(Buffer.from(publicKey.export({ format: "jwk" }).x as string, "base64url"));
  const GROUP_ORDER = 2n ** 252n + 27742317777372353535851937790883648493n;
  const FIELD_PRIME = 2n ** 255n - 19n;
  const le = (value: bigint) => Uint8Array.from(Buffer.from(value.toString(16).padStart(64, "0"), "hex").reverse());
  const leValue = (bytes: Uint8Array) => BigInt(`0x${Buffer.from(bytes).reverse().toString("hex")}`);
  const smallOrder = [`01${"00".repeat(31)}`, `ec${"ff".repeat(30)}7f`, "00".repeat(32), `${"00".repeat(31)}80`];
  const agree = (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array) =>
    expect(verifyStrict(signature, message, publicKey)).toBe(verifyStrictReference(signature, message, publicKey));

  it("on valid signatures and on every single-bit mutation of signature, message or key", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(64 * 8 + 32 * 8 + 8), (message, bit) => {
        const signature = new Uint8Array(sign(null, message, privateKey));
        expect(verifyStrict(signature, message, key)).toBe(true);
        const [sig, msg, pub] = [Uint8Array.from(signature), Uint8Array.from([...message, 0]), Uint8Array.from(key)];
        const flip = (bytes: Uint8Array, at: number) => {
          bytes[at >> 3] = (bytes[at >> 3] as number) ^ (1 << (at & 7));
        };
        if (bit < 512) flip(sig, bit);
        else if (bit < 768) flip(pub, bit - 512);
        else flip(msg, (bit - 768) % (msg.length * 8));
        agree(sig, bit < 768 ? message : msg, pub);
      }),
      { numRuns: 300 },
    );
  });

  it("on non-canonical S, non-canonical and small-order R, and small-order or non-canonical keys", () => {
    const message = Buffer.from("decision");
    const signature = new Uint8Array(sign(null, message, privateKey));
    const withS = (s: bigint) => Uint8Array.from([...signature.subarray(0, 32), ...le(s)]);
    const withR = (r: Uint8Array) => Uint8Array.from([...r, ...signature.subarray(32)]);
    const s = leValue(signature.subarray(32));
    const cases: Array<[Uint8Array, Uint8Array]> = [
      [withS(s + GROUP_ORDER), key],
      [withS(GROUP_ORDER), key],
      [withS(0n), key],
      [withR(le(leValue(signature.subarray(0, 32)) + FIELD_PRIME)), key],
      ...smallOrder.map((r): [Uint8Array, Uint8Array] => [withR(hex(r)), key]),
      ...smallOrder.map((k): [Uint8Array, Uint8Array] => [
        hex(`${"00".repeat(32)}${"00".repeat(32)}`.slice(0, 128)),
        hex(k),
      ]),
      ...smallOrder.map((k): [Uint8Array, Uint8Array] => [hex(`${k}${"00".repeat(32)}`), hex(k)]),
      [signature, le(1n + FIELD_PRIME)],
      [signature, hex("ff".repeat(32))],
    ];
    for (const [sig, pub] of cases) {
      expect(verifyStrict(sig, message, pub)).toBe(false);
      agree(sig, message, pub);
    }
  });
});

interface Signer {
  privateKey: KeyObject;
  publicKey: Uint8Array;
}

function newSigner(): Signer {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const raw = Buffer.from(publicKey.export({ format: "jwk" }).x as string, "base64url");
  return { privateKey, publicKey: new Uint8Array(raw) };
}

function signed(signer: Signer, keyId: string, value: JsonValue, tamper?: (bytes: Uint8Array) => void): EvidenceResult {
  const digest = hashCanonical(value);
  const signature = new Uint8Array(
    sign(null, Buffer.from(canonicalJson(digest as unknown as JsonValue)), signer.privateKey),
  );
  tamper?.(signature);
  return { ...jsonEvidence(value), evidence_hash: digest, signature: { scheme: "ed25519", key_id: keyId, signature } };
}

function scripted(providerId: string, answer: () => EvidenceResult): EvidenceProvider {
  return { providerId, query: async () => answer() };
}

const ask = (pipeline: EvidencePipeline, providerId = "signer") =>
  pipeline.query({ provider_id: providerId, check_id: "check" }, context);

describe("key files", () => {
  const signer = newSigner();

  it("loads raw 32-byte and base64 keys, and names what is wrong with a bad one", async () => {
    const rawPath = join(dir, "raw.pub");
    const textPath = join(dir, "text.pub");
    writeFileSync(rawPath, signer.publicKey);
    writeFileSync(textPath, `  ${Buffer.from(signer.publicKey).toString("base64")}\n`);
    expect(await loadPublicKey(rawPath)).toEqual(signer.publicKey);
    expect(await loadPublicKey(textPath)).toEqual(signer.publicKey);

    const cases: Array<[string, string | Uint8Array, string]> = [
      ["short.pub", Buffer.from(signer.publicKey.subarray(0, 31)).toString("base64"), "invalid ed25519 public key"],
      ["b64.pub", "not base64!", "invalid base64 public key"],
      ["latin.pub", Uint8Array.from([0xff, 0xfe, 0x00]), "public key must be utf-8"],
      ["weak.pub", hex(`01${"00".repeat(31)}`), "invalid ed25519 public key"],
    ];
    for (const [name, content, message] of cases) {
      writeFileSync(join(dir, name), content);
      await expect(loadPublicKey(join(dir, name))).rejects.toMatchObject({
        code: "trust_key_invalid",
        message: `${message}: ${join(dir, name)}`,
      });
    }
    await expect(loadPublicKey(join(dir, "missing.pub"))).rejects.toThrow("unable to read public key");
  });
});

describe("signature policy", () => {
  const signer = newSigner();
  const other = newSigner();
  const keyPath = join(dir, "signer.pub");
  writeFileSync(keyPath, signer.publicKey);

  async function requireSignature(): Promise<SignaturePolicy> {
    return { kind: "require_signature", keys: await loadKeyring([keyPath]) };
  }

  it("accepts a correctly signed answer and fills in its hash", async () => {
    const answer = {
      ...signed(signer, keyPath, parseJson('{"ok":true,"n":18446744073709551615}')),
      evidence_hash: null,
    };
    const pipeline = new EvidencePipeline({
      providers: [scripted("signer", () => answer)],
      defaultSignaturePolicy: await requireSignature(),
    });
    const result = await ask(pipeline);
    expect(result.error).toBeNull();
    expect(result.evidence_hash).toEqual(hashCanonical(parseJson('{"ok":true,"n":18446744073709551615}')));
  });

  const failures: Array<[string, () => EvidenceResult, string]> = [
    ["unsigned", () => jsonEvidence(true), "missing evidence signature"],
    [
      "an unknown scheme",
      () => {
        const answer = signed(signer, keyPath, true);
        return {
          ...answer,
          signature: { ...(answer.signature as NonNullable<EvidenceResult["signature"]>), scheme: "rsa" },
        };
      },
      "unsupported signature scheme",
    ],
    [
      "signed under an unconfigured key id",
      () => signed(signer, "/etc/other.pub", true),
      "signature key not authorized",
    ],
    [
      "without a value",
      () => ({ ...signed(signer, keyPath, true), value: null }),
      "missing evidence hash for signature verification",
    ],
    [
      "whose value was changed after signing",
      () => ({ ...signed(signer, keyPath, true), value: { kind: "json", value: false } }),
      "evidence hash mismatch",
    ],
    [
      "whose value and hash were both changed",
      () => ({
        ...signed(signer, keyPath, true),
        value: { kind: "json", value: false },
        evidence_hash: hashCanonical(false),
      }),
      "signature verification failed",
    ],
    ["signed by another key", () => signed(other, keyPath, true), "signature verification failed"],
    [
      "with a truncated signature",
      () => {
        const answer = signed(signer, keyPath, true);
        const signature = answer.signature as NonNullable<EvidenceResult["signature"]>;
        return { ...answer, signature: { ...signature, signature: signature.signature.subarray(0, 63) } };
      },
      "invalid signature bytes",
    ],
    [
      "with a flipped signature bit",
      () =>
        signed(signer, keyPath, true, (bytes) => {
          bytes[0] = (bytes[0] as number) ^ 1;
        }),
      "signature verification failed",
    ],
  ];
  for (const [what, answer, message] of failures) {
    it(`refuses an answer ${what}: "${message}"`, async () => {
      const pipeline = new EvidencePipeline({
        providers: [scripted("signer", answer)],
        defaultSignaturePolicy: await requireSignature(),
      });
      await expect(ask(pipeline)).rejects.toMatchObject({
        code: "provider_error",
        message: `evidence provider error: ${message}`,
      });
    });
  }

  it("comes from configuration only: audit accepts unsigned answers, a provider's own policy overrides the default", async () => {
    const audit = new EvidencePipeline({ providers: [scripted("signer", () => jsonEvidence(true))] });
    expect((await ask(audit)).error).toBeNull();
    const perProvider = new EvidencePipeline({
      providers: [scripted("signer", () => jsonEvidence(true)), scripted("other", () => jsonEvidence(true))],
      signaturePolicies: new Map([["signer", await requireSignature()]]),
    });
    await expect(ask(perProvider)).rejects.toThrow("missing evidence signature");
    expect((await ask(perProvider, "other")).error).toBeNull();
  });
});

describe("anchor policy", () => {
  const anchors = anchorRequirements(
    decode(
      AnchorsConfig,
      parseJson(
        '{"providers":[{"provider_id":"files","anchor_type":"file_path_rooted","required_fields":[" path ","root_id","path"]}]}',
      ),
      "anchors",
    ),
  );
  const answerWith = (anchor: EvidenceResult["evidence_anchor"]) =>
    new EvidencePipeline({
      providers: [
        scripted("files", () => ({ ...jsonEvidence(1n, { evidence_anchor: anchor }), evidence_ref: { uri: "x" } })),
      ],
      anchors,
    });
  const anchorOf = (value: string) => ({ anchor_type: "file_path_rooted", anchor_value: value });

  it("passes an anchor whose required fields are strings or numbers", async () => {
    const result = await ask(answerWith(anchorOf('{"path":"a.json","root_id":7}')), "files");
    expect(result).toMatchObject({ error: null, evidence_ref: { uri: "x" } });
  });

  const violations: Array<[EvidenceResult["evidence_anchor"], string]> = [
    [null, "missing evidence_anchor"],
    [{ anchor_type: "url", anchor_value: "{}" }, "anchor_type mismatch: expected file_path_rooted got url"],
    [anchorOf("path=a.json"), "anchor_value must be canonical JSON"],
    [anchorOf('["a.json"]'), "anchor_value must be a JSON object"],
    [anchorOf('{"root_id":"r"}'), "anchor field path missing"],
    [anchorOf('{"path":null,"root_id":"r"}'), "anchor field path must be set"],
    [anchorOf('{"path":true,"root_id":"r"}'), "anchor field path must be string or number"],
    [anchorOf('{"path":["a"],"root_id":"r"}'), "anchor field path must be scalar"],
  ];
  for (const [anchor, message] of violations) {
    it(`replaces the answer when ${message}`, async () => {
      expect(await ask(answerWith(anchor), "files")).toEqual({
        value: null,
        lane: "verified",
        error: { code: "anchor_invalid", message, details: null },
        evidence_hash: null,
        evidence_ref: null,
        evidence_anchor: null,
        signature: null,
        content_type: null,
      });
    });
  }

  it("leaves answers that already carry an error, and providers without a requirement, alone", async () => {
    const failed = {
      ...jsonEvidence(null),
      value: null,
      error: { code: "file_not_found", message: "m", details: null },
    };
    const pipeline = new EvidencePipeline({
      providers: [scripted("files", () => failed), scripted("other", () => jsonEvidence(1n))],
      anchors,
    });
    expect((await ask(pipeline, "files")).error?.code).toBe("file_not_found");
    expect((await ask(pipeline, "other")).error).toBeNull();
  });

  it("validates the configuration", () => {
    const attempt = (text: string) => () => decode(AnchorsConfig, parseJson(text), "anchors");
    expect(attempt('{"providers":[{"provider_id":"a","anchor_type":"t","required_fields":[" "]}]}')).toThrow(
      "anchors.providers[0].required_fields: must not be empty",
    );
    expect(
      attempt(
        '{"providers":[{"provider_id":"a","anchor_type":"t","required_fields":["f"]},{"provider_id":"a","anchor_type":"t","required_fields":["f"]}]}',
      ),
    ).toThrow("duplicate anchors.providers.provider_id: a");
  });
});

describe("trust lanes and dev-permissive", () => {
  const trust = (text: string) => decode(TrustConfig, parseJson(text), "trust");
  const dev = (text: string) => decode(DevConfig, parseJson(text), "dev");

  it("uses the configured minimum, and dev-permissive lowers it except for exempt providers", () => {
    expect(effectiveTrustPolicy(trust("{}"), dev("{}"))).toEqual({ minLane: "verified" });
    const permissive = effectiveTrustPolicy(trust("{}"), dev('{"permissive":true}'));
    expect(permissive.minLane).toBe("asserted");
    expect([...(permissive.providerMinLanes ?? [])]).toEqual([
      ["assetcore_read", "verified"],
      ["assetcore", "verified"],
    ]);
  });

  it("reads both forms of the signature setting", () => {
    expect(trust('{"default_policy":"audit"}').default_policy).toBe("audit");
    expect(trust('{"default_policy":{"require_signature":{"keys":["/k.pub"]}}}').default_policy).toEqual({
      require_signature: { keys: ["/k.pub"] },
    });
    expect(() => trust('{"default_policy":"strict"}')).toThrow(/trust\.default_policy/);
  });
});

describe("disclosure for evidence_query", () => {
  const pipelineWith = (config: string, optIns: string[]) =>
    new EvidencePipeline({
      providers: [scripted("p", () => jsonEvidence("secret-value"))],
      disclosure: disclosurePolicy(decode(EvidenceConfig, parseJson(config), "evidence"), optIns),
    });
  const answer = (pipeline: EvidencePipeline) => pipeline.answer({ provider_id: "p", check_id: "c" }, context);

  const cases: Array<[string, string[], boolean]> = [
    ["{}", ["p"], false],
    ['{"allow_raw_values":true}', [], false],
    ['{"allow_raw_values":true}', ["p"], true],
    ['{"allow_raw_values":true,"require_provider_opt_in":false}', [], true],
    ['{"allow_raw_values":false,"require_provider_opt_in":false}', ["p"], false],
  ];
  for (const [config, optIns, reveals] of cases) {
    it(`${config} with opt-ins ${JSON.stringify(optIns)} ${reveals ? "reveals" : "withholds"} the value`, async () => {
      const result = await answer(pipelineWith(config, optIns));
      expect(result.evidence_hash).toEqual(hashCanonical("secret-value"));
      expect(result.value).toEqual(reveals ? { kind: "json", value: "secret-value" } : null);
      expect(result.content_type).toBe(reveals ? "application/json" : null);
    });
  }

  it("turns a provider failure into an answer with an error", async () => {
    const pipeline = new EvidencePipeline({ providers: [] });
    expect(await pipeline.answer({ provider_id: "nope", check_id: "c" }, context)).toMatchObject({
      value: null,
      evidence_hash: null,
      error: { code: "provider_error", message: "evidence provider error: provider not registered: nope" },
    });
    const badCorrelation = await pipeline.answer(
      { provider_id: "nope", check_id: "c" },
      { ...context, correlation_id: "a b" },
    );
    expect(badCorrelation.error?.message).toBe("evidence provider error: invalid correlation id");
  });
});
