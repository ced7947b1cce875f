import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";

const REPO = new URL("../../", import.meta.url).pathname;
const lines = readFileSync(join(REPO, "Dockerfile"), "utf8")
  .replace(/\\\n/g, " ")
  .split("\n")
  .map((line) => line.trim())
  .filter((line) => line.length > 0 && !line.startsWith("#"));
const instructions = lines.map((line) => {
  const [keyword = "", ...rest] = line.split(/\s+/);
  return { keyword: keyword.toUpperCase(), args: rest.join(" ") };
});

describe("the Dockerfile (no Docker engine runs here, so it is checked as text)", () => {
  it("is multi-stage and runs as a non-root user", () => {
    expect(instructions.filter((i) => i.keyword === "FROM")).toHaveLength(2);
    const user = instructions.filter((i) => i.keyword === "USER").at(-1);
    expect(user?.args).toBe("decision-gate");
    const finalStage = instructions.slice(instructions.findLastIndex((i) => i.keyword === "FROM"));
    expect(finalStage.some((i) => i.keyword === "RUN" && i.args.includes("apt-get install"))).toBe(false);
  });

  it("copies only files that exist in the repository", () => {
    for (const copy of instructions.filter((i) => i.keyword === "COPY" && !i.args.startsWith("--from"))) {
      const sources = copy.args.split(/\s+/).slice(0, -1);
      for (const source of sources) expect(existsSync(join(REPO, source)), source).toBe(true);
    }
  });

  it("checks health on /healthz and serves the container-prod preset, which loads as copied", async () => {
    expect(instructions.find((i) => i.keyword === "HEALTHCHECK")?.args).toContain("/healthz");
    expect(instructions.find((i) => i.keyword === "EXPOSE")?.args).toBe("8080");
    const cmd = JSON.parse(instructions.find((i) => i.keyword === "CMD")?.args ?? "[]") as string[];
    expect(cmd).toEqual(["serve", "--config", "/etc/decision-gate/decision-gate.toml", "--allow-non-loopback"]);
    const copiedTo = instructions.find(
      (i) => i.keyword === "COPY" && i.args.endsWith("/etc/decision-gate/decision-gate.toml"),
    );
    const preset = join(REPO, copiedTo?.args.split(/\s+/)[0] ?? "");
    const loaded = await loadConfig({ path: preset, strict: true });
    expect(loaded.config.server).toMatchObject({
      transport: "http",
      bind: "0.0.0.0:8080",
      tls_termination: "upstream",
    });
    expect(loaded.config.server.auth.mode).toBe("bearer_token");
  });
});
