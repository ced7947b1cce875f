import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { presetsDirectory } from "../../src/config/presets.js";
import { startServer } from "../../src/server/app.js";
import { allowNonLoopbackFromEnv } from "../../src/server/serve-policy.js";
import { runCli } from "../support/server-process.js";

const GUIDE = readFileSync(new URL("../../docs/PRESETS.md", import.meta.url), "utf8");
const PRESET_FILES = readdirSync(presetsDirectory())
  .filter((file) => file.endsWith(".toml"))
  .map((file) => file.slice(0, -".toml".length))
  .sort();

/** `## <heading>` sections; a one-word heading names a preset, the others ("Starting a preset", …) do not. */
function sections(): Map<string, string> {
  const found = new Map<string, string>();
  const parts = GUIDE.split(/^## /m).slice(1);
  for (const part of parts) {
    const heading = part.slice(0, part.indexOf("\n")).trim();
    if (!heading.includes(" ")) found.set(heading, part);
  }
  return found;
}

interface StartRecipe {
  mkdirs: string[];
  preset: string;
  destination: string;
  env: Record<string, string>;
  flags: string[];
}

/**
 * The section's shell block: `mkdir -p …`, `cp presets/<name>.toml <dest>`, then
 * `[VAR=value …] npx decision-gate serve --config <dest> [--flags] [&]`.
 */
function startRecipe(section: string): StartRecipe {
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
  if (block === undefined) throw new Error("no sh block");
  const recipe: StartRecipe = { mkdirs: [], preset: "", destination: "", env: {}, flags: [] };
  let serves = 0;
  for (const line of block.trim().split("\n")) {
    const words = line.trim().split(/\s+/);
    if (words[0] === "mkdir" && words[1] === "-p") {
      recipe.mkdirs.push(...words.slice(2));
      continue;
    }
    const copy = /^cp presets\/([a-z0-9-]+)\.toml (\S+)$/.exec(line.trim());
    if (copy !== null) {
      recipe.preset = copy[1] as string;
      recipe.destination = copy[2] as string;
      continue;
    }
    const serve = /^((?:[A-Z_]+=\S+ )*)npx decision-gate serve --config (\S+)((?: --[a-z-]+)*)(?: &)?$/.exec(
      line.trim(),
    );
    if (serve === null) throw new Error(`unexpected line in the start commands: ${line}`);
    serves++;
    for (const assignment of (serve[1] as string).trim().split(/\s+/).filter(Boolean)) {
      const [key, value] = assignment.split("=") as [string, string];
      recipe.env[key] = value;
    }
    if (serve[2] !== recipe.destination) throw new Error(`serve names ${serve[2]}, the copy is ${recipe.destination}`);
    recipe.flags = (serve[3] as string).trim().split(/\s+/).filter(Boolean);
  }
  if (serves !== 1) throw new Error(`expected one serve command, found ${serves}`);
  return recipe;
}

const temporary: string[] = [];
afterAll(() => {
  for (const dir of temporary) rmSync(dir, { recursive: true, force: true });
});

/** Follows a recipe in a fresh directory: `~/…` and absolute paths land below it; returns the copied config. */
function followRecipe(recipe: StartRecipe): { config: string; cwd: string } {
  const root = mkdtempSync(join(tmpdir(), "dg-presets-doc-"));
  temporary.push(root);
  const place = (path: string) => (path.startsWith("~/") ? join(root, "home", path.slice(2)) : join(root, path));
  for (const dir of recipe.mkdirs) mkdirSync(place(dir), { recursive: true });
  const config = place(recipe.destination);
  copyFileSync(join(presetsDirectory(), `${recipe.preset}.toml`), config);
  const cwd = join(root, "checkout");
  mkdirSync(cwd);
  return { config, cwd };
}

/**
 * What `decision-gate serve --config <config>` does after loading (src/cli/main.ts), in this process so the test stays
 * fast: the bind policy, stores, providers and HTTP listener, here on a free port instead of the preset's.
 */
async function serveInProcess(config: string, cwd: string, allowNonLoopback: boolean) {
  const loaded = await loadConfig({ path: config, cwd, env: {}, strict: true });
  const { server } = loaded.config;
  const onFreePort = server.bind?.startsWith("127.0.0.1:") ? { ...server, bind: "127.0.0.1:0" } : server;
  const running = await startServer(
    { ...loaded, config: { ...loaded.config, server: onFreePort } },
    { allowNonLoopback, notice: () => {}, logStream: new PassThrough(), env: {} },
  );
  await running.close();
  return running.url;
}

describe("docs/PRESETS.md", () => {
  const found = sections();

  it("has one section per preset file, and every section names a preset", () => {
    expect([...found.keys()].sort()).toEqual(PRESET_FILES);
  });

  it("says what serve does without a configuration file", () => {
    expect(GUIDE).toContain("`--config <path>`, then `$DECISION_GATE_CONFIG`,\nthen `./decision-gate.toml`");
    expect(GUIDE).toContain("**quickstart-dev** preset built in");
  });

  it.concurrent.for(PRESET_FILES)(
    "%s: the start commands name a configuration that validates and serves",
    async (name, { expect }) => {
      const recipe = startRecipe(found.get(name) as string);
      expect(recipe.preset).toBe(name);
      const { config, cwd } = followRecipe(recipe);

      const validated = await runCli(["config", "validate", "--config", config, "--strict-config"], {
        cwd,
        env: recipe.env,
      });
      expect(validated.stderr).toBe("");
      expect(validated.stdout).toBe("Config valid.\n");
      expect(validated.code).toBe(0);

      const bind = /^bind = "([^"]+)"$/m.exec(readFileSync(config, "utf8"))?.[1] as string;
      const optedIn =
        recipe.flags.includes("--allow-non-loopback") ||
        allowNonLoopbackFromEnv(recipe.env.DECISION_GATE_ALLOW_NON_LOOPBACK);
      if (!bind.startsWith("127.0.0.1:")) {
        // Beyond loopback (container-prod): the documented command opts in, and without the opt-in the server refuses.
        expect(optedIn).toBe(true);
        await expect(serveInProcess(config, cwd, false)).rejects.toThrow(
          `Refusing to bind to non-loopback address ${bind}`,
        );
        return;
      }
      // Loopback presets start from the recipe alone, with their state next to the configuration.
      expect(await serveInProcess(config, cwd, optedIn)).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(existsSync(join(dirname(config), ".decision-gate"))).toBe(true);
      expect(existsSync(join(cwd, ".decision-gate"))).toBe(false);
    },
  );
});
