import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseAllDocuments, parse as parseYaml } from "yaml";
import { loadConfig, parseConfigText } from "../../src/config/load.js";
import { presetPath } from "../../src/config/presets.js";
import { runCli } from "../support/server-process.js";

/*
 * The multi-replica deployment files under deploy/ (docs/DEPLOYMENT.md). No Docker engine or Kubernetes cluster
 * runs here, so they are parsed and checked against each other, the Dockerfile and the server's own routes; the
 * replicas themselves are exercised against a real PostgreSQL by test/store/postgres-replicas*.test.ts.
 */

const REPO = new URL("../../", import.meta.url).pathname;
const DEPLOY = join(REPO, "deploy");
const read = (name: string) => readFileSync(join(DEPLOY, name), "utf8");

interface ComposeService {
  image?: string;
  build?: string;
  env_file?: string;
  volumes?: string[];
  depends_on?: unknown;
  command?: string[];
  ports?: string[];
}
const compose = parseYaml(read("compose.yaml"), { merge: true }) as {
  services: Record<string, ComposeService>;
  volumes: Record<string, unknown>;
  secrets: Record<string, { file: string }>;
};
const replicas = ["gate-a", "gate-b"] as const;
const CONFIG_MOUNT = "/etc/decision-gate/decision-gate.toml";

describe("deploy/decision-gate.toml", () => {
  it("is the container-prod preset with runs, scenarios and data shapes in PostgreSQL", () => {
    // Compared as written (relative paths unresolved): both files live at /etc/decision-gate/decision-gate.toml.
    const deployed = parseConfigText(read("decision-gate.toml"), { strict: true });
    const preset = parseConfigText(readFileSync(presetPath("container-prod"), "utf8"), { strict: true });
    expect(deployed.config.run_state_store).toMatchObject({ type: "postgres" });
    expect(deployed.config.schema_registry).toMatchObject({ type: "postgres" });
    // The URL carries a password: it comes from DECISION_GATE_DATABASE_URL, never from the file.
    expect(deployed.config.run_state_store.url).toBeUndefined();
    expect(deployed.config.schema_registry.url).toBeUndefined();
    const { run_state_store: _r, schema_registry: deployedRegistry, ...deployedRest } = deployed.config;
    const { run_state_store: _p, schema_registry: presetRegistry, ...presetRest } = preset.config;
    expect(deployedRest).toEqual(presetRest);
    expect(deployedRegistry.acl).toEqual(presetRegistry.acl);
  });
});

describe("store commands on the deployment's configuration", () => {
  it("point store backup to pg_dump instead of treating PostgreSQL as a missing file", async () => {
    const config = join(DEPLOY, "decision-gate.toml");
    const result = await runCli(["store", "backup", "--config", config, "--to", join(tmpdir(), "dg-never-written.db")]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      "run_state_store is in PostgreSQL: back it up with pg_dump (see docs/DEPLOYMENT.md)",
    );
  });
});

describe("deploy/compose.yaml", () => {
  it("runs two identical replicas of the image on one PostgreSQL, configured from deploy/decision-gate.toml", () => {
    expect(Object.keys(compose.services).sort()).toEqual(["gate-a", "gate-b", "postgres", "proxy"]);
    const [a, b] = replicas.map((name) => compose.services[name]);
    expect(a).toEqual(b);
    expect(a?.build).toBe("..");
    expect(a?.volumes).toContain(`./decision-gate.toml:${CONFIG_MOUNT}:ro`);
    expect(a?.env_file).toBe("database.env");
    expect(a?.depends_on).toEqual({ postgres: { condition: "service_healthy" } });
    // The replicas share one state volume, so a runpack exported through one is readable through the other.
    expect(a?.volumes?.find((volume) => volume.endsWith(":/var/lib/decision-gate"))?.split(":")[0]).toBe("gate-state");
    expect(Object.keys(compose.volumes)).toContain("gate-state");
  });

  it("points the replicas at the compose database, with the durability the store relies on", () => {
    const example = read("database.env.example");
    const url = new URL(/^DECISION_GATE_DATABASE_URL=(\S+)$/m.exec(example)?.[1] ?? "");
    const postgres = compose.services.postgres as ComposeService & { environment: Record<string, string> };
    expect(url.hostname).toBe("postgres");
    expect(url.port).toBe("5432");
    expect(url.username).toBe(postgres.environment.POSTGRES_USER);
    expect(url.pathname).toBe(`/${postgres.environment.POSTGRES_DB}`);
    expect(postgres.command).toEqual(expect.arrayContaining(["synchronous_commit=on", "fsync=on"]));
    expect(compose.secrets.postgres_password?.file).toBe("./postgres-password.txt");
    // The secrets are never committed.
    const ignored = readFileSync(join(REPO, ".gitignore"), "utf8").split("\n");
    for (const secret of ["deploy/database.env", "deploy/postgres-password.txt", "deploy/tls/"]) {
      expect(ignored).toContain(secret);
    }
  });

  it("exposes only the TLS proxy, which balances over both replicas at the port the configuration binds", async () => {
    const deployed = await loadConfig({ path: join(DEPLOY, "decision-gate.toml") });
    const port = deployed.config.server.bind?.split(":").at(-1);
    for (const [name, service] of Object.entries(compose.services)) {
      expect(service.ports ?? [], name).toEqual(name === "proxy" ? ["443:443"] : []);
    }
    const proxy = compose.services.proxy;
    expect(proxy?.volumes).toContain("./nginx.conf:/etc/nginx/conf.d/default.conf:ro");
    const nginx = read("nginx.conf");
    const upstream = /upstream decision_gate \{([^}]*)\}/.exec(nginx)?.[1] ?? "";
    const servers = [...upstream.matchAll(/^\s*server (\S+?):(\d+)/gm)].map((match) => `${match[1]}:${match[2]}`);
    expect(servers).toEqual(replicas.map((name) => `${name}:${port}`));
    expect(nginx).toMatch(/listen 443 ssl;/);
    expect(nginx).toContain("proxy_pass http://decision_gate;");
    // A client must never choose its own mTLS identity through the proxy.
    expect(nginx).toContain('proxy_set_header x-decision-gate-client-subject "";');
    expect(deployed.config.server.tls_termination).toBe("upstream");
  });
});

describe("deploy/kubernetes.yaml", () => {
  const documents = parseAllDocuments(read("kubernetes.yaml")).map((document) => document.toJS()) as Array<{
    kind: string;
    spec: Record<string, unknown>;
  }>;
  const ofKind = (kind: string) => documents.find((document) => document.kind === kind);

  it("runs two replicas of the image's command, ready on /readyz and alive on /healthz", () => {
    expect(documents.map((document) => document.kind).sort()).toEqual([
      "Deployment",
      "Ingress",
      "PersistentVolumeClaim",
      "PodDisruptionBudget",
      "Service",
    ]);
    const deployment = ofKind("Deployment")?.spec as {
      replicas: number;
      template: { spec: { containers: Array<Record<string, unknown>>; securityContext: Record<string, unknown> } };
    };
    expect(deployment.replicas).toBeGreaterThanOrEqual(2);
    const [container] = deployment.template.spec.containers;
    const dockerCmd = /^CMD (.*)$/m.exec(readFileSync(join(REPO, "Dockerfile"), "utf8"))?.[1] ?? "[]";
    expect(container?.args).toEqual(JSON.parse(dockerCmd));
    expect(container?.readinessProbe).toMatchObject({ httpGet: { path: "/readyz", port: "http" } });
    // Liveness must not follow the database, or an outage would restart every pod.
    expect(container?.livenessProbe).toMatchObject({ httpGet: { path: "/healthz", port: "http" } });
    expect(container?.ports).toEqual([{ name: "http", containerPort: 8080 }]);
    expect(container?.envFrom).toEqual([{ secretRef: { name: "decision-gate-database" } }]);
    expect(container?.volumeMounts).toContainEqual(
      expect.objectContaining({ mountPath: CONFIG_MOUNT, subPath: "decision-gate.toml" }),
    );
    expect(deployment.template.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001 });
    expect(ofKind("PodDisruptionBudget")?.spec).toMatchObject({ minAvailable: 1 });
  });
});
