import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type Command, InvalidArgumentError } from "commander";
import {
  ACTION_RECEIPT_SIGNATURE_FILE,
  actionReceiptSignatureProblems,
  actionReceiptSigner,
  signActionReceipt,
} from "../actions/signature.js";
import { prettyJson } from "../actions/sorted-json.js";
import { evaluateStage356 } from "../actions/stage356.js";
import { STAGE355_FILE_NAMES, seriesTimestamp, TIMESTAMP_PATTERN } from "../actions/stage356-format.js";
import { STAGE357_FILE_NAMES, type Stage357Result, stage357Files } from "../actions/stage357-documents.js";
import type { ManifestSigner } from "../core/runpack/signature.js";
import { loadVerifyKey } from "./keys.js";

interface ActionOptions {
  receipt?: string;
  gate?: string;
  out?: string;
  enforce?: boolean;
  stage355Dir?: string;
  signKey?: string;
  createdAt?: string;
}

/** `decision-gate action` (Stage356 receipt → Stage357 runtime action) and `decision-gate action verify`. */
export function registerActionCommands(program: Command): void {
  const action = program
    .command("action")
    .description("Verify a Stage356 runtime receipt fail closed and write the Stage357 runtime action files")
    // Not `requiredOption`: commander would then demand them of `action verify` as well.
    .option("--receipt <path>", "Stage356 runtime execution receipt (required)")
    .option("--gate <path>", "Stage356 fail-closed gate (required)")
    .option("--out <dir>", "directory to write the Stage357 files to (required)")
    .option("--enforce", "exit 1 when the action is terminate (also when GITHUB_ACTIONS=true)")
    .option("--stage355-dir <dir>", "also verify the Stage355 files in this directory (deep chain check)")
    .option("--sign-key <path>", "sign the action receipt with this Ed25519 private key (PKCS#8 PEM)")
    .option("--created-at <time>", "time recorded in the receipt, YYYY-MM-DDTHH:MM:SSZ (default: now)", timestamp)
    .action(runAction);
  action
    .command("verify")
    .description("Check a Stage357 action receipt's hashes and its Ed25519 signature")
    .requiredOption("--dir <dir>", "directory holding the action receipt and its signature")
    .requiredOption("--verify-key <path>", "Ed25519 public key (raw, base64 or SPKI PEM)")
    .action(verifyAction);
}

async function runAction(options: ActionOptions, command: Command): Promise<void> {
  const { receipt, gate, out } = options;
  if (receipt === undefined || gate === undefined || out === undefined) {
    command.error("error: --receipt, --gate and --out are required", { exitCode: 2 });
  }
  const signer =
    options.signKey === undefined ? undefined : actionReceiptSigner(await readRequired(options.signKey, "signing key"));
  const result = evaluateStage356({
    receiptBytes: await readOptional(receipt),
    gateBytes: await readOptional(gate),
    stage355: options.stage355Dir === undefined ? undefined : await readStage355(options.stage355Dir),
    githubActions: process.env.GITHUB_ACTIONS === "true",
    enforce: options.enforce === true,
    createdAt: options.createdAt ?? seriesTimestamp(new Date()),
    paths: { receipt, gate },
  });
  await writeResult(out, result, signer);
  process.stdout.write(`${resultLine(result)}; receipt: ${join(out, STAGE357_FILE_NAMES.receipt)}\n`);
  if (result.receipt.enforcement.exit_code !== 0) process.exitCode = result.receipt.enforcement.exit_code;
}

async function verifyAction(options: { dir: string; verifyKey: string }): Promise<void> {
  const publicKey = await loadVerifyKey(options.verifyKey);
  const problems = actionReceiptSignatureProblems(
    await readOptional(join(options.dir, STAGE357_FILE_NAMES.receipt)),
    await readOptional(join(options.dir, ACTION_RECEIPT_SIGNATURE_FILE)),
    publicKey,
  );
  if (problems.length === 0) {
    process.stdout.write(
      `Stage357 action receipt verified: hashes intact, signed by ${Buffer.from(publicKey).toString("base64")}\n`,
    );
    return;
  }
  process.stdout.write(`Stage357 action receipt verification failed: ${problems.join("; ")}\n`);
  process.exitCode = 1;
}

/** A missing or unreadable input is not an error here: verification records it as a failed check. */
async function readOptional(path: string): Promise<Uint8Array | null> {
  return readFile(path).then(
    (bytes) => new Uint8Array(bytes),
    () => null,
  );
}

async function readRequired(path: string, what: string): Promise<Uint8Array> {
  const bytes = await readOptional(path);
  if (bytes === null) throw new Error(`unable to read ${what}: ${path}`);
  return bytes;
}

async function readStage355(dir: string) {
  return {
    resultBytes: await readOptional(join(dir, STAGE355_FILE_NAMES.result)),
    statusBytes: await readOptional(join(dir, STAGE355_FILE_NAMES.status)),
  };
}

async function writeResult(out: string, result: Stage357Result, signer: ManifestSigner | undefined): Promise<void> {
  await mkdir(out, { recursive: true });
  for (const file of stage357Files(result)) await writeFile(join(out, file.name), file.text);
  if (signer === undefined) return;
  const signature = signActionReceipt(result.receipt, signer);
  await writeFile(join(out, ACTION_RECEIPT_SIGNATURE_FILE), prettyJson(signature));
}

function resultLine({ receipt }: Stage357Result): string {
  const failed = Object.keys(receipt.checks).filter((name) => !receipt.checks[name]);
  return [
    `Stage357 runtime action: ${receipt.action} (runtime_decision ${receipt.runtime_decision},`,
    `${receipt.enforcement.mode}, exit ${receipt.enforcement.exit_code});`,
    `failed checks: ${failed.length === 0 ? "none" : failed.join(",")}`,
  ].join(" ");
}

function timestamp(value: string): string {
  if (!TIMESTAMP_PATTERN.test(value)) throw new InvalidArgumentError("expected YYYY-MM-DDTHH:MM:SSZ");
  return value;
}
