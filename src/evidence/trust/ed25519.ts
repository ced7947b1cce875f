import { createHash, createPublicKey, type KeyObject, verify } from "node:crypto";
import { Point } from "@noble/ed25519";

const GROUP_ORDER = Point.CURVE().n;
const FIELD_PRIME = Point.CURVE().p;

/**
 * Strict Ed25519 verification with the semantics of ed25519-dalek's `verify_strict`, which the reference
 * uses: canonical encodings of R and the public key, S reduced below the group order, small-order R and
 * public keys refused, and the cofactorless equation [S]B = R + [k]A with R compared by its encoding.
 *
 * The strict rules are checked here; the equation is left to node's OpenSSL, which computes [S]B - [k]A and
 * compares its encoding with R, exactly as dalek does. `verifyStrictReference` does everything in
 * @noble/ed25519 arithmetic; a property test shows both make identical decisions.
 */
export function verifyStrict(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== 64 || publicKey.length !== 32) return false;
  const encodedR = signature.subarray(0, 32);
  if (littleEndianInteger(signature.subarray(32, 64)) >= GROUP_ORDER) return false;
  if (!isCanonicalEncoding(encodedR) || SMALL_ORDER_ENCODINGS.has(Buffer.from(encodedR).toString("hex"))) {
    return false;
  }
  const key = verificationKey(publicKey);
  return key !== undefined && verify(null, message, key, signature);
}

/** The same decisions as `verifyStrict`, computed entirely with @noble/ed25519's group arithmetic. */
export function verifyStrictReference(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== 64 || publicKey.length !== 32) return false;
  const encodedR = signature.subarray(0, 32);
  const s = littleEndianInteger(signature.subarray(32, 64));
  if (s >= GROUP_ORDER) return false;
  const points = decodeStrict(publicKey, encodedR);
  if (points === undefined) return false;
  const [a, r] = points;
  if (a.isSmallOrder() || r.isSmallOrder()) return false;
  const digest = createHash("sha512").update(encodedR).update(publicKey).update(message).digest();
  const k = littleEndianInteger(digest) % GROUP_ORDER;
  const expectedR = Point.BASE.multiply(s, false).subtract(a.multiply(k, false));
  return Buffer.from(expectedR.toBytes()).equals(Buffer.from(encodedR));
}

/** Decodes both points, refusing non-canonical encodings; `undefined` when either is not a curve point. */
function decodeStrict(publicKey: Uint8Array, encodedR: Uint8Array): [Point, Point] | undefined {
  try {
    return [Point.fromBytes(publicKey, false), Point.fromBytes(encodedR, false)];
  } catch {
    return undefined;
  }
}

/** An encoding is canonical when its y coordinate (the low 255 bits) is below the field prime. */
function isCanonicalEncoding(encoded: Uint8Array): boolean {
  return littleEndianInteger(encoded) % 2n ** 255n < FIELD_PRIME;
}

/**
 * The canonical encodings of the eight points of small order: the multiples of a point of order 8.
 * Derived (and checked) at load time from one known order-8 point.
 */
const SMALL_ORDER_ENCODINGS: ReadonlySet<string> = (() => {
  const orderEight = Point.fromHex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05", false);
  const encodings = new Set<string>();
  let multiple = orderEight;
  for (let k = 1; k <= 8; k++) {
    encodings.add(multiple.toHex());
    multiple = multiple.add(orderEight);
  }
  if (encodings.size !== 8 || !multiple.equals(orderEight)) throw new Error("small-order table is wrong");
  return encodings;
})();

/** Validated keys by hex; configured keyrings are small, the bound only guards against unexpected callers. */
const verificationKeys = new Map<string, KeyObject | null>();
const MAX_CACHED_KEYS = 1024;

/** A usable public key as a node key object, validated once per key; `undefined` for weak or invalid keys. */
function verificationKey(publicKey: Uint8Array): KeyObject | undefined {
  const id = Buffer.from(publicKey).toString("hex");
  let key = verificationKeys.get(id);
  if (key === undefined) {
    key = isValidPublicKey(publicKey)
      ? createPublicKey({
          key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(publicKey).toString("base64url") },
          format: "jwk",
        })
      : null;
    if (verificationKeys.size >= MAX_CACHED_KEYS) verificationKeys.clear();
    verificationKeys.set(id, key);
  }
  return key ?? undefined;
}

function littleEndianInteger(bytes: Uint8Array): bigint {
  return BigInt(`0x${Buffer.from(bytes).reverse().toString("hex") || "0"}`);
}

/** Whether 32 bytes encode a usable Ed25519 public key (a canonical point that is not of small order). */
export function isValidPublicKey(bytes: Uint8Array): boolean {
  if (bytes.length !== 32) return false;
  try {
    return !Point.fromBytes(bytes, false).isSmallOrder();
  } catch {
    return false;
  }
}
