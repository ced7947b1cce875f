import { z } from "zod";
import { DecisionGateError } from "../core/errors.js";
import { DecisionRecord } from "../core/run/schema.js";
import { MAX_RUNPACK_ARTIFACT_BYTES, type RunpackManifest, type RunpackReader } from "../core/runpack/manifest.js";
import { AnyJson, decode } from "../core/wire/common.js";
import { parseJsonBytes } from "../json/parse.js";
import { RECEIPTS_ARTIFACT_PATH, receiptChainProblems } from "./receipts.js";

/**
 * A runpack check for exported action receipts: when the manifest lists `artifacts/action_receipts.json`, every
 * receipt must recompute, chain to the one before, and be bound to its decision in `artifacts/decisions.json`.
 */
export async function checkReceiptChain(manifest: RunpackManifest, reader: RunpackReader, errors: string[]) {
  if (!manifest.artifacts.some((artifact) => artifact.path === RECEIPTS_ARTIFACT_PATH)) return;
  try {
    const receipts = decode(
      z.array(AnyJson),
      parseJsonBytes(await reader.read(RECEIPTS_ARTIFACT_PATH, MAX_RUNPACK_ARTIFACT_BYTES)),
      "receipts",
    );
    const decisionBytes = await reader.read("artifacts/decisions.json", MAX_RUNPACK_ARTIFACT_BYTES);
    const decisions = decode(z.array(DecisionRecord), parseJsonBytes(decisionBytes), "decision log");
    errors.push(...receiptChainProblems(receipts, decisions));
  } catch (error) {
    if (!(error instanceof DecisionGateError)) throw error;
    errors.push(`action receipts unreadable: ${error.message}`);
  }
}
