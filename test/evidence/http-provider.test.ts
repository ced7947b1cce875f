import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { InvalidInputError } from "../../src/core/errors.js";
import type { EvidenceQuery } from "../../src/core/spec/schema.js";
import { decode } from "../../src/core/wire/common.js";
import {
  createAddressPolicy,
  createHttpProvider,
  createTargetPolicy,
  HttpProviderConfig,
  httpConfigWarnings,
} from "../../src/evidence/builtin/http.js";
import { type EvidenceContext, type EvidenceProvider, EvidenceProviderFailure } from "../../src/evidence/provider.js";
import type { JsonValue } from "../../src/json/value.js";

const CONTEXT: EvidenceContext = {
  tenant_id: 1n,
  namespace_id: 1n,
  run_id: "run-1",
  scenario_id: "scenario-1",
  stage_id: "stage-1",
  trigger_id: "trigger-1",
  trigger_time: { kind: "logical", value: 1n },
  correlation_id: null,
};

const HELLO = "hello, evidence";
const SIZE_LIMIT = 16;

/** Reaches the local test server: plain http, loopback allowed, small limits. */
const LOCAL = { allow_http: true, allowed_networks: ["127.0.0.0/8"], timeout_ms: 300n, max_response_bytes: 16n };

interface SeenRequest {
  path: string;
  headers: IncomingMessage["headers"];
}

const ROUTES: Record<string, (response: ServerResponse) => void> = {
  "/ok": (response) => response.end(HELLO),
  "/exact-limit": (response) => response.end("x".repeat(SIZE_LIMIT)),
  "/missing": (response) => response.writeHead(404).end("not here"),
  "/redirect": (response) => response.writeHead(302, { Location: "/target" }).end(),
  "/redirect-unlisted": (response) =>
    response.writeHead(302, { Location: `http://localhost:${new URL(origin).port}/target` }).end(),
  "/target": (response) => response.end("redirected"),
  "/declared-too-large": (response) => response.writeHead(200, { "Content-Length": "1000000" }).flushHeaders(),
  "/streamed-too-large": (response) => {
    response.writeHead(200);
    for (let chunk = 0; chunk < 5; chunk += 1) response.write("0123456789");
    response.end();
  },
  "/truncated": (response) => {
    response.writeHead(200, { "Content-Length": "10" });
    response.write("abc", () => response.socket?.destroy());
  },
  "/never-answers": () => {},
  "/slow-body": (response) => {
    response.writeHead(200, { "Content-Length": "10" });
    response.write("abc");
  },
};

let server: Server;
let origin: string;
let seen: SeenRequest[];

beforeAll(async () => {
  server = createServer((request, response) => {
    seen.push({ path: request.url ?? "", headers: request.headers });
    (ROUTES[request.url ?? ""] ?? ((reply: ServerResponse) => reply.writeHead(500).end()))(response);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

beforeEach(() => {
  seen = [];
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function provider(config: Record<string, unknown> = LOCAL): EvidenceProvider {
  return createHttpProvider(decode(HttpProviderConfig, config, "config"));
}

/** `params` may be `null` here, as from a caller that did not go through `decode(EvidenceQuery)`. */
function query(target: EvidenceProvider, check_id: string, params?: JsonValue) {
  return target.query({ provider_id: "http", check_id, params: params as EvidenceQuery["params"] }, CONTEXT);
}

async function expectFailure(answer: Promise<unknown>, message: string | RegExp): Promise<void> {
  const error = await answer.then(
    () => undefined,
    (failure: unknown) => failure,
  );
  expect(error).toBeInstanceOf(EvidenceProviderFailure);
  const expected = typeof message === "string" ? `evidence provider error: ${message}` : message;
  expect((error as Error).message).toMatch(expected);
  if (typeof expected === "string") expect((error as Error).message).toBe(expected);
}

function answerFor(uri: string, value: JsonValue) {
  return {
    value: { kind: "json", value },
    lane: "verified",
    error: null,
    evidence_hash: null,
    evidence_ref: { uri },
    evidence_anchor: { anchor_type: "url", anchor_value: uri },
    signature: null,
    content_type: "application/json",
  };
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

describe("status", () => {
  it("answers the status code as an integer with the URL as ref and anchor", async () => {
    const url = `${origin}/ok`;
    expect(await query(provider(), "status", { url })).toEqual(answerFor(url, 200n));
  });

  it("answers 404 as a value, not an error", async () => {
    const answer = await query(provider(), "status", { url: `${origin}/missing` });
    expect(answer.value).toEqual({ kind: "json", value: 404n });
  });

  it("returns a redirect as the status and never follows it", async () => {
    const answer = await query(provider(), "status", { url: `${origin}/redirect` });
    expect(answer.value).toEqual({ kind: "json", value: 302n });
    expect(seen.map((request) => request.path)).toEqual(["/redirect"]);
  });

  it("does not wait for the body", async () => {
    const answer = await query(provider(), "status", { url: `${origin}/slow-body` });
    expect(answer.value).toEqual({ kind: "json", value: 200n });
  });

  it("sends a GET with the configured user agent", async () => {
    await query(provider(), "status", { url: `${origin}/ok` });
    await query(provider({ ...LOCAL, user_agent: "gate-probe/2" }), "status", { url: `${origin}/ok` });
    expect(seen.map((request) => request.headers["user-agent"])).toEqual(["decision-gate/0.1", "gate-probe/2"]);
  });

  it("sends a non-ASCII user agent as its UTF-8 bytes, as the reference does", async () => {
    await query(provider({ ...LOCAL, user_agent: "gäte-probe ✓" }), "status", { url: `${origin}/ok` });
    const received = seen[0]?.headers["user-agent"] ?? "";
    expect(Buffer.from(received, "latin1").toString("utf8")).toBe("gäte-probe ✓");
  });

  it("keeps a timeout_ms longer than Node's longest timer as a deadline that has not passed", async () => {
    const patient = provider({ ...LOCAL, timeout_ms: 1n << 40n });
    expect((await query(patient, "status", { url: `${origin}/ok` })).value).toEqual({ kind: "json", value: 200n });
  });

  it("fails with a request error when the server never answers within timeout_ms", async () => {
    const started = Date.now();
    await expectFailure(query(provider(), "status", { url: `${origin}/never-answers` }), "http request failed");
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("speaks TLS for https urls (a plain-http server fails the handshake)", async () => {
    const url = `${origin.replace("http:", "https:")}/ok`;
    await expectFailure(query(provider(), "status", { url }), "http request failed");
  });

  it("fails with a request error when nothing listens", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/`;
    await new Promise((resolve) => closed.close(resolve));
    await expectFailure(query(provider(), "status", { url }), "http request failed");
  });
});

describe("body_hash", () => {
  it("answers the sha256 of the raw body", async () => {
    const url = `${origin}/ok`;
    const answer = await query(provider({ ...LOCAL, max_response_bytes: 1024n }), "body_hash", { url });
    expect(answer).toEqual(answerFor(url, { algorithm: "sha256", value: sha256(HELLO) }));
  });

  it("accepts a body of exactly max_response_bytes", async () => {
    const answer = await query(provider(), "body_hash", { url: `${origin}/exact-limit` });
    expect(answer.value).toEqual({
      kind: "json",
      value: { algorithm: "sha256", value: sha256("x".repeat(SIZE_LIMIT)) },
    });
  });

  it("hashes the body of a redirect without following it", async () => {
    const answer = await query(provider(), "body_hash", { url: `${origin}/redirect` });
    expect(answer.value).toEqual({ kind: "json", value: { algorithm: "sha256", value: sha256("") } });
    expect(seen.map((request) => request.path)).toEqual(["/redirect"]);
  });

  it("refuses a declared Content-Length over the limit before reading the body", async () => {
    await expectFailure(
      query(provider(), "body_hash", { url: `${origin}/declared-too-large` }),
      "http response exceeds size limit",
    );
  });

  it("refuses a streamed body that grows over the limit", async () => {
    await expectFailure(
      query(provider(), "body_hash", { url: `${origin}/streamed-too-large` }),
      "http response exceeds size limit",
    );
  });

  it("reports a body shorter than its Content-Length as truncated", async () => {
    await expectFailure(query(provider(), "body_hash", { url: `${origin}/truncated` }), "http response truncated");
  });

  it("fails the read when the body does not finish within timeout_ms", async () => {
    const started = Date.now();
    await expectFailure(query(provider(), "body_hash", { url: `${origin}/slow-body` }), "failed to read response");
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("fails with a request error when the server never answers within timeout_ms", async () => {
    await expectFailure(query(provider(), "body_hash", { url: `${origin}/never-answers` }), "http request failed");
  });
});

describe("url policy", () => {
  it("refuses http unless allow_http", async () => {
    await expectFailure(
      query(provider({ allowed_networks: ["127.0.0.0/8"] }), "status", { url: `${origin}/ok` }),
      "unsupported url scheme",
    );
    expect(seen).toEqual([]);
  });

  it("refuses schemes other than http and https", async () => {
    await expectFailure(query(provider(), "status", { url: "ftp://127.0.0.1/file" }), "unsupported url scheme");
    await expectFailure(query(provider(), "status", { url: "file:///etc/passwd" }), "unsupported url scheme");
  });

  it("allows a host on the allow-list", async () => {
    const answer = await query(provider({ ...LOCAL, allowed_hosts: ["127.0.0.1"] }), "status", { url: `${origin}/ok` });
    expect(answer.value).toEqual({ kind: "json", value: 200n });
  });

  it("refuses a host missing from the allow-list", async () => {
    const configured = provider({ ...LOCAL, allowed_hosts: ["example.com"] });
    await expectFailure(query(configured, "status", { url: `${origin}/ok` }), "url host not allowed");
    expect(seen).toEqual([]);
  });

  it("refuses every host when the allow-list is empty", async () => {
    await expectFailure(
      query(provider({ ...LOCAL, allowed_hosts: [] }), "status", { url: `${origin}/ok` }),
      "url host not allowed",
    );
  });

  it("matches the allow-list against the normalized host", async () => {
    const configured = provider({ ...LOCAL, allowed_hosts: ["127.0.0.1"] });
    const port = new URL(origin).port;
    const answer = await query(configured, "status", { url: `http://0x7f.0.0.1:${port}/ok` });
    expect(answer).toEqual(answerFor(`${origin}/ok`, 200n));
  });
});

describe("network safety", () => {
  it("refuses loopback by default and sends nothing", async () => {
    const defaults = provider({ allow_http: true, timeout_ms: 300n });
    await expectFailure(
      query(defaults, "status", { url: `${origin}/ok` }),
      "http target address not allowed: 127.0.0.1",
    );
    expect(seen).toEqual([]);
  });

  it("reaches a loopback address that allowed_hosts names, without any network key", async () => {
    const sidecar = provider({ allow_http: true, allowed_hosts: ["127.0.0.1"], timeout_ms: 300n });
    expect(await query(sidecar, "status", { url: `${origin}/ok` })).toEqual(answerFor(`${origin}/ok`, 200n));
    const hashed = await query(sidecar, "body_hash", { url: `${origin}/ok` });
    expect(hashed.value).toEqual({ kind: "json", value: { algorithm: "sha256", value: sha256(HELLO) } });
  });

  it("reaches the loopback addresses of a host name that allowed_hosts names", async () => {
    const port = new URL(origin).port;
    const named = provider({ allow_http: true, allowed_hosts: ["localhost"], timeout_ms: 300n });
    const answer = await query(named, "status", { url: `http://localhost:${port}/ok` });
    expect(answer.value).toEqual({ kind: "json", value: 200n });
  });

  it("does not extend a listed address to an unlisted host name that resolves to it", async () => {
    const port = new URL(origin).port;
    const sidecar = provider({ allow_http: true, allowed_hosts: ["127.0.0.1"], timeout_ms: 300n });
    await expectFailure(query(sidecar, "status", { url: `http://localhost:${port}/ok` }), "url host not allowed");
    await expectFailure(query(sidecar, "status", { url: `http://[::1]:${port}/ok` }), "url host not allowed");
    expect(seen).toEqual([]);
  });

  it("answers a listed server's redirect to an unlisted loopback host with the 3xx, never following it", async () => {
    const sidecar = provider({ allow_http: true, allowed_hosts: ["127.0.0.1"], timeout_ms: 300n });
    const answer = await query(sidecar, "status", { url: `${origin}/redirect-unlisted` });
    expect(answer.value).toEqual({ kind: "json", value: 302n });
    expect(seen.map((request) => request.path)).toEqual(["/redirect-unlisted"]);
  });

  it("lets a listed host name resolve to private addresses but not to an unlisted metadata address", () => {
    const policy = createTargetPolicy({
      allowed_hosts: ["sidecar.internal", "[fd00:ec2::254]", "169.254.170.2"],
      allow_private_networks: false,
      allowed_networks: undefined,
    });
    const listedName = policy("sidecar.internal");
    for (const address of ["127.0.0.1", "::1", "10.1.2.3", "fd12::1", "8.8.8.8", "169.254.170.2", "fd00:ec2::254"]) {
      expect(listedName(address), address).toBe(true);
    }
    for (const address of [
      "169.254.169.254",
      "::ffff:169.254.169.254",
      "64:ff9b::a9fe:a9fe",
      "100.100.100.200",
      "fd20:ce::254",
      "not-an-address",
    ]) {
      expect(listedName(address), address).toBe(false);
    }
    expect(policy("[fd00:ec2::254]")("fd00:ec2::254")).toBe(true);
    expect(policy("169.254.170.2")("169.254.170.2")).toBe(true);
    for (const host of ["other.internal", "[::1]"]) {
      expect(policy(host)("127.0.0.1"), host).toBe(false);
      expect(policy(host)("8.8.8.8"), host).toBe(true);
    }
  });

  it("refuses the metadata address when only a different metadata address is listed", async () => {
    const listed = provider({ allow_http: true, allowed_hosts: ["169.254.170.2"], timeout_ms: 300n });
    await expectFailure(query(listed, "status", { url: "http://169.254.169.254/" }), "url host not allowed");
  });

  it("allows loopback with allow_private_networks", async () => {
    const permissive = provider({ allow_http: true, allow_private_networks: true, timeout_ms: 300n });
    expect((await query(permissive, "status", { url: `${origin}/ok` })).value).toEqual({ kind: "json", value: 200n });
  });

  it("allows loopback inside allowed_networks, and only there", async () => {
    expect((await query(provider(), "status", { url: `${origin}/ok` })).value).toEqual({ kind: "json", value: 200n });
    const elsewhere = provider({ ...LOCAL, allowed_networks: ["10.0.0.0/8", "127.0.0.2"] });
    await expectFailure(
      query(elsewhere, "status", { url: `${origin}/ok` }),
      "http target address not allowed: 127.0.0.1",
    );
  });

  it("checks the addresses a hostname resolves to", async () => {
    const port = new URL(origin).port;
    const defaults = provider({ allow_http: true, timeout_ms: 300n });
    await expectFailure(
      query(defaults, "status", { url: `http://localhost:${port}/ok` }),
      /^evidence provider error: http target address not allowed: (127\.0\.0\.1|::1)$/,
    );
    expect(seen).toEqual([]);
    const local = provider({ ...LOCAL, allowed_networks: ["127.0.0.0/8", "::1/128"] });
    const answer = await query(local, "status", { url: `http://localhost:${port}/ok` });
    expect(answer.value).toEqual({ kind: "json", value: 200n });
  });

  it.each([
    ["http://[::1]/", "::1"],
    ["http://[::ffff:127.0.0.1]/", "::ffff:7f00:1"],
    ["http://[64:ff9b::127.0.0.1]/", "64:ff9b::7f00:1"],
    ["http://[fe80::1]/", "fe80::1"],
    ["http://[fd00::1]/", "fd00::1"],
    ["http://[::]/", "::"],
    ["http://[ff02::1]/", "ff02::1"],
    ["http://0.0.0.0/", "0.0.0.0"],
    ["http://10.1.2.3/", "10.1.2.3"],
    ["http://172.16.0.1/", "172.16.0.1"],
    ["http://192.168.1.1/", "192.168.1.1"],
    ["http://169.254.169.254/latest/meta-data/", "169.254.169.254"],
    ["http://100.64.0.1/", "100.64.0.1"],
    ["http://224.0.0.1/", "224.0.0.1"],
    ["http://255.255.255.255/", "255.255.255.255"],
    ["https://2130706433/", "127.0.0.1"],
  ])("refuses the IP literal %s before connecting", async (url, address) => {
    await expectFailure(
      query(provider({ allow_http: true }), "status", { url }),
      `http target address not allowed: ${address}`,
    );
  });

  it("allows public addresses, including their IPv4-mapped and NAT64 forms", () => {
    const allows = createAddressPolicy({ allow_private_networks: false, allowed_networks: undefined });
    for (const address of ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]) {
      expect(allows(address)).toBe(true);
    }
    for (const address of ["127.0.0.1", "::ffff:10.0.0.1", "fe80::1%eth0", "not-an-address", "198.18.0.1"]) {
      expect(allows(address)).toBe(false);
    }
  });

  it("never puts URL credentials into the answer", async () => {
    const port = new URL(origin).port;
    const answer = await query(provider(), "status", { url: `http://user:secret@127.0.0.1:${port}/ok` });
    expect(answer).toEqual(answerFor(`${origin}/ok`, 200n));
    const text = JSON.stringify(answer, (_key, value) => (typeof value === "bigint" ? value.toString() : value));
    expect(text).not.toContain("secret");
    expect(text).not.toContain("user");
    expect(seen[0]?.headers.authorization).toBe(`Basic ${Buffer.from("user:secret").toString("base64")}`);
  });
});

describe("params and checks", () => {
  it.each<[string, JsonValue | undefined]>([
    ["http check requires params", undefined],
    ["http check requires params", null],
    ["http params must be an object", "https://example.com/"],
    ["http params must be an object", ["https://example.com/"]],
    ["missing url param", {}],
    ["url param must be a string", { url: 443n }],
    ["url param must be a string", { url: null }],
    ["invalid url", { url: "not a url" }],
    ["invalid url", { url: "https://" }],
  ])("fails with %s", async (message, params) => {
    await expectFailure(query(provider(), "status", params), message);
  });

  it("rejects an unknown check after validating the url", async () => {
    await expectFailure(query(provider(), "headers", { url: `${origin}/ok` }), "unsupported http check");
    await expectFailure(query(provider(), "toString", { url: `${origin}/ok` }), "unsupported http check");
    await expectFailure(query(provider(), "headers", { url: "nope" }), "invalid url");
    expect(seen).toEqual([]);
  });
});

describe("config", () => {
  it("fills in the defaults", () => {
    expect(decode(HttpProviderConfig, {}, "config")).toEqual({
      allow_http: false,
      timeout_ms: 5000n,
      max_response_bytes: 1_048_576n,
      user_agent: "decision-gate/0.1",
      hash_algorithm: "sha256",
      allow_private_networks: false,
    });
  });

  it.each<[string, Record<string, unknown>]>([
    ["config.timeout_ms: timeout_ms must not be negative", { timeout_ms: -1n }],
    ["config.timeout_ms: expected an integer", { timeout_ms: 500.5 }],
    ["config.max_response_bytes: max_response_bytes must not be negative", { max_response_bytes: -1n }],
    ["max_response_bytes must fit in an unsigned 64-bit integer", { max_response_bytes: 1n << 64n }],
    ['config.hash_algorithm: hash_algorithm must be "sha256"', { hash_algorithm: "sha512" }],
    [
      "config.user_agent: user_agent must be a valid header value (no control characters)",
      { user_agent: "probe\r\nX-Injected: 1" },
    ],
    ["config.user_agent: user_agent must be a valid header value", { user_agent: "probe\u007f" }],
    ["config.allowed_hosts", { allowed_hosts: "example.com" }],
    ["config.allowed_networks[0]: expected a CIDR block such as 10.0.0.0/8", { allowed_networks: ["10.0.0.0/33"] }],
    ["config.allowed_networks[1]: expected a CIDR block", { allowed_networks: ["::1/128", "intranet"] }],
    ["config.allowed_networks[0]: expected a CIDR block", { allowed_networks: ["10.0.0.0/8/8"] }],
    ["config.allow_private_networks", { allow_private_networks: "yes" }],
  ])("rejects with %s", (message, config) => {
    expect(() => decode(HttpProviderConfig, config, "config")).toThrow(InvalidInputError);
    expect(() => decode(HttpProviderConfig, config, "config")).toThrow(message);
  });

  it("accepts the reference's whole range, warning only outside the advised one", () => {
    const warningsFor = (config: Record<string, unknown>) =>
      httpConfigWarnings(decode(HttpProviderConfig, config, "config"));
    const config = {
      timeout_ms: 100n,
      max_response_bytes: 16_777_216n,
      user_agent: "probe\tgäte ✓",
      allowed_networks: ["10.0.0.1", "fd00::/8"],
    };
    expect(decode(HttpProviderConfig, config, "config")).toMatchObject(config);
    expect(warningsFor(config)).toEqual([]);
    expect(warningsFor({ timeout_ms: 60_000n, max_response_bytes: 1n })).toEqual([]);
    expect(warningsFor({ timeout_ms: 25n })).toEqual([
      'timeout_ms = 25 is outside the advised 100..=60000 milliseconds; a target slower than that fails with "http request failed"',
    ]);
    expect(warningsFor({ timeout_ms: 60_001n, max_response_bytes: 0n })).toEqual([
      "timeout_ms = 60001 is outside the advised 100..=60000 milliseconds; a slow target holds its trigger that long",
      "max_response_bytes = 0 is outside the advised 1..=16777216 bytes; body_hash refuses every non-empty body",
    ]);
    expect(warningsFor({ timeout_ms: 0n, max_response_bytes: 16_777_217n })).toHaveLength(2);
  });
});
