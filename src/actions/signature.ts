import { createPrivateKey, type KeyObject } from "node:crypto";
import { z } from "zod";
import { DecisionGateError } from "../core/errors.js";
import { ed25519Signer, type ManifestSigner } from "../core/runpack/signature.js";
import { verifyStrict } from "../evidence/trust/ed25519.js";
import { type PlainJsonObject, parsePlainObject, sortedCompactJson } from "./sorted-json.js";
import { actionReceiptHashProblems, type RuntimeActionReceipt } from "./stage357-documents.js";

/*
 * Optional Ed25519 signature of the Stage357 action receipt, in a file beside it so the receipt's bytes do not
 * change. The signed message is the receipt's canonical bytes (the Stage356 canonicalization, `receipt_sha256`
 * included), so a verifier needs only the receipt and the public key.
 */

export const ACTION_RECEIPT_SIGNATURE_FILE = "stage357_runtime_action_receipt.sig.json";

export const ActionReceiptSignature = z.object({
  algorithm: z.literal("ed25519"),
  /** Standard base64 of the raw 32-byte public key. */
  key_id: z.string(),
  receipt_sha256: z.string(),
  /** Standard base64 of the 64-byte signature. */
  signature: z.string(),
});
export type ActionReceiptSignature = z.output<typeof ActionReceiptSignature>;

/** A signer for an Ed25519 private key: PKCS#8 PEM (as `openssl genpkey -algorithm ed25519` writes it) or a key. */
export function actionReceiptSigner(privateKey: string | Uint8Array | KeyObject): ManifestSigner {
  return ed25519Signer(privateKeyObject(privateKey));
}

export function signActionReceipt(receipt: RuntimeActionReceipt, signer: ManifestSigner): ActionReceiptSignature {
  return {
    algorithm: "ed25519",
    key_id: Buffer.from(signer.publicKey).toString("base64"),
    receipt_sha256: receipt.receipt_sha256,
    signature: Buffer.from(signer.sign(signedMessage(receipt))).toString("base64"),
  };
}

/**
 * Why the receipt file and signature file do not prove that `publicKey` signed an intact action receipt; empty
 * when they do. `null` stands for a file that could not be read.
 */
export function actionReceiptSignatureProblems(
  receiptBytes: Uint8Array | null,
  signatureBytes: Uint8Array | null,
  publicKey: Uint8Array,
): string[] {
  const receipt = receiptBytes === null ? undefined : parsePlainObject(receiptBytes);
  if (receipt === undefined) return ["action receipt missing or not a JSON object"];
  const problems = actionReceiptHashProblems(receipt);
  const signature = signatureBytes === null ? undefined : decodeSignature(signatureBytes);
  if (signature === undefined) return [...problems, "signature missing or invalid"];
  if (signature.key_id !== Buffer.from(publicKey).toString("base64")) return [...problems, "signature key mismatch"];
  if (signature.receipt_sha256 !== receipt.receipt_sha256) {
    return [...problems, "signature does not cover this receipt"];
  }
  const rawSignature = decodeCanonicalBase64(signature.signature);
  if (rawSignature === undefined || !verifyStrict(rawSignature, signedMessage(receipt), publicKey)) {
    return [...problems, "signature invalid"];
  }
  return problems;
}

function signedMessage(receipt: PlainJsonObject): Uint8Array {
  return Buffer.from(sortedCompactJson(receipt), "utf8");
}

function privateKeyObject(key: string | Uint8Array | KeyObject): KeyObject {
  if (typeof key !== "string" && !(key instanceof Uint8Array)) return key;
  try {
    return createPrivateKey(typeof key === "string" ? key : Buffer.from(key));
  } catch {
    throw new DecisionGateError(
      "invalid_params",
      "signing_key_invalid",
      "signing key must be a PKCS#8 PEM private key",
    );
  }
}

function decodeSignature(bytes: Uint8Array): ActionReceiptSignature | undefined {
  const result = ActionReceiptSignature.safeParse(parsePlainObject(bytes));
  return result.success ? result.data : undefined;
}

/** Standard padded base64 only: decoding and re-encoding must give back the same text. */
function decodeCanonicalBase64(text: string): Uint8Array | undefined {
  const bytes = Buffer.from(text, "base64");
  return bytes.toString("base64") === text ? new Uint8Array(bytes) : undefined;
}
