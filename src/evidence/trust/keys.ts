import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { DecisionGateError } from "../../core/errors.js";
import { isValidPublicKey } from "./ed25519.js";

/** A trusted key could not be loaded; raised at startup, so a bad key stops the server from serving. */
export class TrustKeyError extends DecisionGateError {
  constructor(path: string, reason: string) {
    super("invalid_params", "trust_key_invalid", `${reason}: ${path}`, { path });
  }
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const UTF8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Loads an Ed25519 public key file: exactly 32 bytes are the raw key; anything else must be UTF-8 text whose
 * trimmed content is standard, padded base64 of 32 bytes (evidence §3.2).
 */
export async function loadPublicKey(path: string): Promise<Uint8Array> {
  const bytes = await readFile(path).catch(() => {
    throw new TrustKeyError(path, "unable to read public key");
  });
  const key = bytes.length === 32 ? new Uint8Array(bytes) : decodeBase64Key(path, bytes);
  if (!isValidPublicKey(key)) throw new TrustKeyError(path, "invalid ed25519 public key");
  return key;
}

function decodeBase64Key(path: string, bytes: Uint8Array): Uint8Array {
  let text: string;
  try {
    text = UTF8.decode(bytes).trim();
  } catch {
    throw new TrustKeyError(path, "public key must be utf-8");
  }
  if (!BASE64.test(text)) throw new TrustKeyError(path, "invalid base64 public key");
  const key = new Uint8Array(Buffer.from(text, "base64"));
  if (key.length !== 32) throw new TrustKeyError(path, "invalid ed25519 public key");
  return key;
}

/**
 * Loads trusted keys keyed by their path exactly as configured (the `key_id` signers name); relative paths are
 * read from `baseDir`.
 */
export async function loadKeyring(paths: readonly string[], baseDir = process.cwd()): Promise<Map<string, Uint8Array>> {
  const keys = await Promise.all(
    paths.map(async (path) => [path, await loadPublicKey(resolve(baseDir, path))] as const),
  );
  return new Map(keys);
}
