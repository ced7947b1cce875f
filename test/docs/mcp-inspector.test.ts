import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { presetsDirectory } from "../../src/config/presets.js";
import { toolNames } from "../../src/server/tools/catalog.js";
import { CLI_COMMAND, startServerProcess } from "../support/server-process.js";

/*
 * The MCP Inspector's command-line client (`@modelcontextprotocol/inspector-cli`) against the real server, with
 * exactly the commands docs/MCP_CLIENTS.md shows: over stdio, starting the server from the guide's `mcpServers`
 * entry, and over Streamable HTTP against the hardened preset.
 */

const GUIDE = readFileSync(new URL("../../docs/MCP_CLIENTS.md", import.meta.url), "utf8");
const INSPECTOR = fileURLToPath(new URL("../../node_modules/.bin/mcp-inspector-cli", import.meta.url));
/** The Inspector CLI 1.0.3 needs a `package.json` in the parent of its working directory (see the guide). */
const WORKING_DIRECTORY = fileURLToPath(new URL("../../docs/", import.meta.url));
const PLACEHOLDER_URL = "http://127.0.0.1:4000";
const PLACEHOLDER_CONFIG = "/path/to/mcp.json";

/** The Inspector commands of the guide's block marked `<!-- inspector: <name> -->`, as argument lists. */
function guideCommands(name: string): string[][] {
  const block = new RegExp(`<!-- inspector: ${name} -->\\n\`\`\`sh\\n([\\s\\S]*?)\`\`\``).exec(GUIDE)?.[1];
  if (block === undefined) throw new Error(`docs/MCP_CLIENTS.md has no "${name}" Inspector block`);
  return block
    .trim()
    .split("\n")
    .map((line) => [...line.matchAll(/"([^"]*)"|(\S+)/g)].map((match) => match[1] ?? (match[2] as string)));
}

/** Runs one guide command (`npx mcp-inspector-cli …`) with the installed Inspector; resolves to its JSON output. */
async function inspect(command: string[], replace: (arg: string) => string): Promise<Record<string, unknown>> {
  expect(command.slice(0, 2)).toEqual(["npx", "mcp-inspector-cli"]);
  const { stdout } = await promisify(execFile)(process.execPath, [INSPECTOR, ...command.slice(2).map(replace)], {
    cwd: WORKING_DIRECTORY,
    timeout: 60_000,
  });
  return JSON.parse(stdout);
}

const providerIds = (result: Record<string, unknown>) =>
  (result.structuredContent as { providers: Array<{ provider_id: string }> }).providers.map((p) => p.provider_id);

const temporary: string[] = [];
afterAll(() => {
  for (const dir of temporary) rmSync(dir, { recursive: true, force: true });
});

describe("the MCP Inspector CLI, as docs/MCP_CLIENTS.md runs it", () => {
  it.concurrent("lists and calls tools over stdio", { timeout: 120_000 }, async ({ expect }) => {
    const [list, call] = guideCommands("stdio") as [string[], string[]];
    const dir = mkdtempSync(join(tmpdir(), "dg-inspector-"));
    temporary.push(dir);
    const stdioToml = /<!-- file: stdio\.toml -->\n```toml\n([\s\S]*?)```/.exec(GUIDE)?.[1] as string;
    writeFileSync(join(dir, "stdio.toml"), stdioToml);
    mkdirSync(join(dir, "evidence"));
    // The guide's Claude Desktop entry runs the built checkout through npx; the test runs the same CLI from source.
    const desktop = /<!-- file: claude_desktop_config\.json -->\n```json\n([\s\S]*?)```/.exec(GUIDE)?.[1] as string;
    const entry = JSON.parse(desktop).mcpServers["decision-gate"] as { args: string[] };
    const serverArgs = entry.args
      .slice(3)
      .map((arg) => (arg === "/path/to/stdio.toml" ? join(dir, "stdio.toml") : arg));
    const mcpJson = join(dir, "mcp.json");
    const server = { command: CLI_COMMAND.command, args: [...CLI_COMMAND.args, ...serverArgs] };
    writeFileSync(mcpJson, JSON.stringify({ mcpServers: { "decision-gate": server } }));
    const replace = (arg: string) => (arg === PLACEHOLDER_CONFIG ? mcpJson : arg);

    const [listed, called] = await Promise.all([inspect(list, replace), inspect(call, replace)]);
    expect((listed.tools as Array<{ name: string }>).map((tool) => tool.name)).toEqual(toolNames());
    expect(called.isError).toBeUndefined();
    expect(providerIds(called)).toEqual(["env", "http", "json", "time"]);
  });

  it.concurrent("lists and calls tools over Streamable HTTP", { timeout: 120_000 }, async ({ expect }) => {
    const [list, call] = guideCommands("http") as [string[], string[]];
    const hardened = readFileSync(join(presetsDirectory(), "hardened.toml"), "utf8").replace(
      'bind = "127.0.0.1:4000"',
      'bind = "127.0.0.1:0"',
    );
    const server = await startServerProcess(hardened, [], (dir) => mkdirSync(join(dir, "evidence")));
    try {
      const replace = (arg: string) => arg.replace(PLACEHOLDER_URL, server.url);
      const [listed, called] = await Promise.all([inspect(list, replace), inspect(call, replace)]);
      expect((listed.tools as Array<{ name: string }>).length).toBeGreaterThan(0);
      expect((listed.tools as Array<{ name: string; outputSchema?: unknown }>).every((t) => t.outputSchema)).toBe(true);
      expect(called.isError).toBeUndefined();
      expect(providerIds(called).length).toBeGreaterThan(0);
      // The Inspector really spoke to this server: its calls are in the audit log.
      expect(server.stderr()).toContain('"tool":"providers_list"');
    } finally {
      await server.stop();
    }
  });
});
