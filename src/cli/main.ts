import { access, readFile, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { Command, CommanderError, Option } from "commander";
import { configJsonSchema } from "../config/json-schema.js";
import { loadConfig } from "../config/load.js";
import { DecisionGateError } from "../core/errors.js";
import { RunState } from "../core/run/schema.js";
import { attestationTime, DEFAULT_VERIFIER_ID } from "../core/runpack/attestation.js";
import { buildRunpack } from "../core/runpack/builder.js";
import { DEFAULT_MANIFEST_NAME, type VerificationReport } from "../core/runpack/manifest.js";
import { signatureFileName, writeManifestSignature } from "../core/runpack/signature.js";
import { ScenarioSpec } from "../core/spec/schema.js";
import { decode } from "../core/wire/common.js";
import { parseJson } from "../json/parse.js";
import type { JsonValue } from "../json/value.js";
import { canonicalJson } from "../json/write.js";
import { writeRunpackAttestation } from "../runpack/attestation.js";
import { FilesystemRunpack, verifyRunpackDirectory } from "../runpack/filesystem.js";
import { renderReportHtml } from "../runpack/report/html.js";
import { loadRunpackForReport } from "../runpack/report/load.js";
import { buildReportModel } from "../runpack/report/model.js";
import { loadManifestSigner } from "../runpack/signing-key.js";
import { startServer } from "../server/app.js";
import { allowNonLoopbackFromEnv } from "../server/serve-policy.js";
import { validateServerConfig } from "../server/validate-config.js";
import { registerActionCommands } from "./action.js";
import { createMcpClient, type McpClientOptions } from "./client.js";
import { CliFailure } from "./failure.js";
import { loadVerifyKey } from "./keys.js";
import { withProgress } from "./progress.js";
import { registerStoreCommands } from "./store.js";

export const VERSION = "0.1.0";
/** The manifest name `runpack export` writes by default (the server's tools write `manifest.json`). */
const EXPORT_MANIFEST_NAME = "runpack.json";

export function buildProgram(): Command {
  const program = new Command("decision-gate")
    .description("Decision Gate: gate agents and CI pipelines on evidence, with verifiable run records.")
    .version(`decision-gate ${VERSION}`, "--version")
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text) });

  program
    .command("serve")
    .description("Start the server (without --config: ./decision-gate.toml, else the quickstart-dev preset)")
    .option("--config <path>", "configuration file")
    .option("--allow-non-loopback", "allow binding HTTP/SSE beyond loopback (also DECISION_GATE_ALLOW_NON_LOOPBACK)")
    .option("--strict-config", "treat unknown configuration keys as errors")
    .action(serve);

  const config = program.command("config").description("Configuration tools");
  config
    .command("validate")
    .option("--config <path>", "configuration file")
    .option("--strict-config", "treat unknown configuration keys as errors")
    .action(async (options: { config?: string; strictConfig?: boolean }) => {
      await load(options);
      process.stdout.write("Config valid.\n");
    });
  config
    .command("schema")
    .description("Print the JSON Schema of decision-gate.toml")
    .action(() => {
      process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
    });

  const runpack = program.command("runpack").description("Build and verify runpacks offline");
  runpack
    .command("export")
    .requiredOption("--spec <path>", "scenario spec (JSON)")
    .requiredOption("--state <path>", "run state (JSON)")
    .requiredOption("--output-dir <dir>", "directory to write the runpack to")
    .option("--manifest-name <file>", "manifest file name", EXPORT_MANIFEST_NAME)
    .option("--with-verification", "verify the written runpack and include the report")
    .addOption(new Option("--generated-at-unix-ms <ms>", "generation time (default: now)").argParser(nonNegative))
    .option("--sign-key <path>", "sign the manifest with this Ed25519 private key (PKCS#8 PEM)")
    .option("--attest", "also write an in-toto attestation (DSSE) beside the manifest, signed with --sign-key")
    .option("--verifier-id <uri>", "the attestation's verifier.id", DEFAULT_VERIFIER_ID)
    .action(exportRunpack);
  runpack
    .command("verify")
    .requiredOption("--manifest <path>", "manifest file")
    .option("--runpack-dir <dir>", "runpack directory (default: the manifest's directory)")
    .addOption(new Option("--format <format>", "report format").choices(["json", "markdown"]).default("json"))
    .option("--verify-key <path>", "require a manifest signature by this Ed25519 public key (raw, base64 or SPKI PEM)")
    .action(verifyRunpack);
  runpack
    .command("report")
    .description("Write a self-contained HTML audit report of a runpack (verification first, then the run)")
    .argument("<dir>", "runpack directory")
    .requiredOption("--html <file>", "where to write the HTML page (- for standard output)")
    .option("--manifest-name <file>", "manifest file name (default: manifest.json, else runpack.json)")
    .option("--verify-key <path>", "require a manifest signature by this Ed25519 public key (raw, base64 or SPKI PEM)")
    .action(reportRunpack);

  const tools = program.command("mcp").description("Call a running server").command("tools");
  withClientOptions(tools.command("list")).action(async (options: ClientFlags) => {
    await withClient(options, async (client) => printJson(await client.listTools()));
  });
  withClientOptions(tools.command("call"))
    .requiredOption("--tool <name>", "tool name (snake_case)")
    .option("--json <json>", "tool arguments as JSON")
    .option("--input <path>", "tool arguments from a JSON file")
    .action(async (options: ClientFlags & { tool: string; json?: string; input?: string }) => {
      const args = await toolArguments(options);
      await withClient(options, async (client) => printJson(await client.callTool(options.tool, args)));
    });
  registerActionCommands(program);
  registerStoreCommands(program, load);
  return program;
}

interface ClientFlags {
  transport: McpClientOptions["transport"];
  endpoint?: string;
  stdioCommand?: string;
  stdioArgs: string[];
  stdioEnv: string[];
  stdioConfig?: string;
  timeoutMs: number;
  bearerToken?: string;
  clientSubject?: string;
}

function withClientOptions(command: Command): Command {
  const collect = (value: string, previous: string[]) => [...previous, value];
  return command
    .addOption(
      new Option("--transport <transport>", "wire to use")
        .choices(["http", "sse", "stdio", "mcp-http", "mcp-stdio"])
        .default("http"),
    )
    .option("--endpoint <url>", "server URL (e.g. http://127.0.0.1:4000/rpc or .../mcp)")
    .option("--mcp-url <url>", "alias of --endpoint")
    .option("--stdio-command <command>", "server command for stdio transports")
    .option("--stdio-args <arg>", "server argument (repeatable)", collect, [])
    .option("--stdio-env <key=value>", "server environment entry (repeatable)", collect, [])
    .option("--stdio-config <path>", "configuration file for the stdio server (sets DECISION_GATE_CONFIG)")
    .addOption(new Option("--timeout-ms <ms>", "request timeout").argParser(nonNegative).default(5000))
    .option("--bearer-token <token>", "bearer token")
    .option("--client-subject <subject>", "sent as x-decision-gate-client-subject");
}

async function serve(options: { config?: string; allowNonLoopback?: boolean; strictConfig?: boolean }) {
  const loaded = await load(options);
  const allowNonLoopback =
    options.allowNonLoopback === true || allowNonLoopbackFromEnv(process.env.DECISION_GATE_ALLOW_NON_LOOPBACK);
  const server = await startServer(loaded, { allowNonLoopback });
  if (server.url !== null)
    process.stderr.write(`decision-gate: serving on ${server.url} (/rpc, /mcp, /healthz, /readyz)\n`);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void server.close();
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  await server.done;
}

async function load(options: { config?: string; strictConfig?: boolean }) {
  const loaded = await loadConfig({
    path: options.config,
    env: process.env,
    cwd: process.cwd(),
    strict: options.strictConfig,
  })
    .then((config) => {
      validateServerConfig(config.config);
      return config;
    })
    .catch((error: unknown) => {
      throw new CliFailure(`Failed to load config: ${error instanceof Error ? error.message : String(error)}`);
    });
  for (const warning of loaded.warnings) process.stderr.write(`decision-gate: WARNING: ${warning}\n`);
  return loaded;
}

async function readJsonFile(path: string): Promise<JsonValue> {
  try {
    return parseJson(await readFile(path, "utf8"));
  } catch (error) {
    if (error instanceof DecisionGateError) throw new CliFailure(`${path}: ${error.message}`);
    throw new CliFailure(`unable to read ${path}`);
  }
}

async function exportRunpack(
  options: {
    spec: string;
    state: string;
    outputDir: string;
    manifestName: string;
    withVerification?: boolean;
    generatedAtUnixMs?: number;
    signKey?: string;
    attest?: boolean;
    verifierId: string;
  },
  command: Command,
) {
  if (options.attest && options.signKey === undefined) command.error("error: --attest requires --sign-key");
  if (!URL.canParse(options.verifierId)) command.error(`error: --verifier-id is not a URI: ${options.verifierId}`);
  const signer = options.signKey === undefined ? undefined : await loadManifestSigner(options.signKey);
  const spec = decode(ScenarioSpec, await readJsonFile(options.spec), "spec");
  const state = decode(RunState, await readJsonFile(options.state), "state");
  const generatedAt = { kind: "unix_millis" as const, value: BigInt(options.generatedAtUnixMs ?? Date.now()) };
  const timeVerified = options.attest ? attestationTime(generatedAt) : undefined;
  const dir = resolve(options.outputDir);
  const runpack = new FilesystemRunpack(dir);
  const { manifest, report } = await withProgress((progress) =>
    buildRunpack(spec, state, runpack, {
      generatedAt,
      manifestName: options.manifestName,
      verification: options.withVerification ? { reader: runpack } : undefined,
      onProgress: (done, total) => progress.update("Writing runpack", done, total),
    }),
  );
  if (report !== null) process.stdout.write(`Verification status: ${report.status}\n`);
  process.stdout.write(`Runpack manifest written to ${join(dir, options.manifestName)}\n`);
  if (signer === undefined) return;
  await writeManifestSignature(runpack, options.manifestName, manifest, signer);
  process.stdout.write(`Runpack signature written to ${join(dir, signatureFileName(options.manifestName))}\n`);
  if (timeVerified === undefined) return;
  const attestation = await writeRunpackAttestation(runpack, manifest, {
    signer,
    manifestName: options.manifestName,
    verifierId: options.verifierId,
    timeVerified,
    runStatus: state.status,
  });
  process.stdout.write(`Runpack attestation written to ${join(dir, attestation)}\n`);
}

async function verifyRunpack(options: {
  manifest: string;
  runpackDir?: string;
  format: "json" | "markdown";
  verifyKey?: string;
}) {
  const verifyKey = options.verifyKey === undefined ? undefined : await loadVerifyKey(options.verifyKey);
  const dir = resolve(options.runpackDir ?? dirname(options.manifest));
  const manifestPath = resolve(options.manifest).slice(dir.length + 1);
  const report = await withProgress((progress) =>
    verifyRunpackDirectory(dir, manifestPath, {
      verifyKey,
      onProgress: (done, total) => progress.update("Verifying runpack", done, total),
    }),
  );
  process.stdout.write(options.format === "json" ? `${canonicalJson(report)}\n` : markdownReport(report));
  if (report.status !== "pass") process.exitCode = 1;
}

async function reportRunpack(dir: string, options: { html: string; manifestName?: string; verifyKey?: string }) {
  const verifyKey = options.verifyKey === undefined ? undefined : await loadVerifyKey(options.verifyKey);
  const root = resolve(dir);
  const manifestName = options.manifestName ?? (await defaultManifestName(root));
  const loaded = await withProgress((progress) =>
    loadRunpackForReport(root, manifestName, {
      verifyKey,
      onProgress: (done, total) => progress.update("Verifying runpack", done, total),
    }),
  );
  const page = renderReportHtml(buildReportModel(loaded), { generator: `decision-gate ${VERSION} runpack report` });
  const status = loaded.verification.status;
  if (options.html === "-") process.stdout.write(page);
  else {
    await writeFile(options.html, page);
    process.stdout.write(`Runpack report written to ${resolve(options.html)} (verification: ${status})\n`);
  }
  if (status !== "pass") process.exitCode = 1;
}

/** The server writes `manifest.json`, `runpack export` defaults to `runpack.json`: take whichever exists. */
async function defaultManifestName(root: string): Promise<string> {
  for (const name of [DEFAULT_MANIFEST_NAME, EXPORT_MANIFEST_NAME]) {
    if (
      await access(join(root, name)).then(
        () => true,
        () => false,
      )
    )
      return name;
  }
  throw new CliFailure(`no manifest.json or runpack.json in ${root}; name the manifest with --manifest-name`);
}

function markdownReport(report: VerificationReport): string {
  const errors = report.errors.length === 0 ? ["- None"] : report.errors.map((error) => `- ${error}`);
  return [
    "# Decision Gate Runpack Verification",
    "",
    `- Status: ${report.status}`,
    `- Checked files: ${report.checked_files}`,
    "",
    "## Errors",
    "",
    ...errors,
    "",
  ].join("\n");
}

async function toolArguments(options: { json?: string; input?: string }): Promise<JsonValue> {
  if (options.json !== undefined) return parseJson(options.json);
  if (options.input !== undefined) return readJsonFile(options.input);
  return {};
}

async function withClient(
  flags: ClientFlags,
  work: (client: Awaited<ReturnType<typeof createMcpClient>>) => Promise<void>,
) {
  const stdioEnv = Object.fromEntries(flags.stdioEnv.map((entry) => entry.split(/=(.*)/s).slice(0, 2)));
  if (flags.stdioConfig !== undefined) stdioEnv.DECISION_GATE_CONFIG = resolve(flags.stdioConfig);
  const client = await createMcpClient({
    transport: flags.transport,
    endpoint: flags.endpoint ?? (flags as { mcpUrl?: string }).mcpUrl,
    stdioCommand: flags.stdioCommand,
    stdioArgs: flags.stdioArgs,
    stdioEnv,
    timeoutMs: flags.timeoutMs,
    bearerToken: flags.bearerToken,
    clientSubject: flags.clientSubject,
  });
  try {
    await work(client);
  } catch (error) {
    throw new CliFailure(`MCP request failed: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    await client.close();
  }
}

function printJson(value: JsonValue): void {
  process.stdout.write(`${canonicalJson(value)}\n`);
}

function nonNegative(value: string): number {
  const number = Number(value);
  if (!Number.isSafeInteger(number) || number < 0)
    throw new CommanderError(2, "invalid", `not a non-negative integer: ${value}`);
  return number;
}

/** Runs the CLI; resolves to the process exit code (0 success, 1 handled error, 2 usage error). */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    if (argv.length <= 2) {
      program.outputHelp();
      return 0;
    }
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.code === "commander.version" || error.code === "commander.helpDisplayed" ? 0 : 2;
    }
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}
