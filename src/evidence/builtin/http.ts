import { lookup as dnsLookup } from "node:dns";
import { request as httpRequest, type IncomingMessage, type RequestOptions } from "node:http";
import { request as httpsRequest } from "node:https";
import { type BlockList, isIP, type LookupFunction } from "node:net";
import { addAbortSignal } from "node:stream";
import { urlToHttpOptions } from "node:url";
import { z } from "zod";
import type { EvidenceQuery } from "../../core/spec/schema.js";
import { hashBytes } from "../../json/hash.js";
import { isJsonObject, type JsonValue } from "../../json/value.js";
import { networkBlockList, parseIpNetwork } from "../../net/address.js";
import { type EvidenceProvider, EvidenceProviderFailure, jsonEvidence } from "../provider.js";

/** The reference takes any unsigned 64-bit value for `timeout_ms` and `max_response_bytes`. */
const U64_MAX = 18_446_744_073_709_551_615n;
/** The longest delay `setTimeout` honours (a longer one fires at once); about 24.8 days, so "no deadline". */
const LONGEST_TIMER_MS = 2_147_483_647;

/** What the reference's client takes as a header value, written as UTF-8: no ASCII control character but tab. */
const HEADER_VALUE = /^[\t\x20-\x7e\u0080-\u{10ffff}]*$/u;

const unsigned = (field: string) =>
  z.bigint().gte(0n, `${field} must not be negative`).lte(U64_MAX, `${field} must fit in an unsigned 64-bit integer`);

/** `[[providers]] name = "http"` config table (evidence §1.5, plus the network-safety keys). */
export const HttpProviderConfig = z.object({
  allow_http: z.boolean().default(false),
  timeout_ms: unsigned("timeout_ms").default(5000n),
  max_response_bytes: unsigned("max_response_bytes").default(1_048_576n),
  /**
   * Exact matches against the WHATWG-normalized host (lowercase, punycode, IPv6 in brackets); `[]` blocks all.
   * A listed host is also an explicit opt-in to its address being loopback or private.
   */
  allowed_hosts: z.array(z.string()).optional(),
  user_agent: z
    .string()
    .regex(HEADER_VALUE, "user_agent must be a valid header value (no control characters)")
    .default("decision-gate/0.1"),
  hash_algorithm: z.literal("sha256", 'hash_algorithm must be "sha256"').default("sha256"),
  /** Allows loopback, private, link-local and other special-use targets (for local development). */
  allow_private_networks: z.boolean().default(false),
  /** CIDR blocks (or single addresses) allowed even though they are special-use, e.g. `["127.0.0.0/8"]`. */
  allowed_networks: z
    .array(z.string().refine((entry) => parseIpNetwork(entry) !== null, "expected a CIDR block such as 10.0.0.0/8"))
    .optional(),
});
export type HttpProviderConfig = z.output<typeof HttpProviderConfig>;

/**
 * The ranges this project advises for the numeric keys. A value outside is accepted, as the reference accepts it,
 * and a starting server warns about it with the consequence named here.
 */
const ADVISED_RANGES = [
  {
    field: "timeout_ms",
    unit: "milliseconds",
    min: 100n,
    max: 60_000n,
    below: 'a target slower than that fails with "http request failed"',
    above: "a slow target holds its trigger that long",
  },
  {
    field: "max_response_bytes",
    unit: "bytes",
    min: 1n,
    max: 16_777_216n,
    below: "body_hash refuses every non-empty body",
    above: "body_hash holds up to that much of a body in memory",
  },
] as const;

/** What a starting server should say about values the reference accepts but this project advises against. */
export function httpConfigWarnings(config: HttpProviderConfig): string[] {
  return ADVISED_RANGES.flatMap(({ field, unit, min, max, below, above }) => {
    const value = config[field];
    if (value >= min && value <= max) return [];
    return [`${field} = ${value} is outside the advised ${min}..=${max} ${unit}; ${value < min ? below : above}`];
  });
}

/**
 * Targets refused unless allowed by config: everything the IANA special-purpose registries mark as not globally
 * reachable, plus multicast and reserved space. IPv4 rules also match IPv4-mapped IPv6 (`::ffff:a.b.c.d`) in
 * `net.BlockList`, and are repeated under the NAT64 prefix `64:ff9b::/96` below.
 */
const SPECIAL_USE_NETWORKS = [
  "0.0.0.0/8", // "this network"; 0.0.0.0 reaches the local host
  "10.0.0.0/8", // private
  "100.64.0.0/10", // carrier-grade NAT
  "127.0.0.0/8", // loopback
  "169.254.0.0/16", // link-local, including cloud metadata endpoints
  "172.16.0.0/12", // private
  "192.0.0.0/24", // IETF protocol assignments (some cloud metadata services live here)
  "192.0.2.0/24", // documentation
  "192.88.99.0/24", // deprecated 6to4 relay anycast
  "192.168.0.0/16", // private
  "198.18.0.0/15", // benchmarking
  "198.51.100.0/24", // documentation
  "203.0.113.0/24", // documentation
  "224.0.0.0/4", // multicast
  "240.0.0.0/4", // reserved, including broadcast
  "::/128", // unspecified
  "::1/128", // loopback
  "::/96", // deprecated IPv4-compatible addresses
  "64:ff9b:1::/48", // local-use NAT64
  "100::/64", // discard-only
  "2001::/23", // IETF protocol assignments, including Teredo
  "2001:db8::/32", // documentation
  "2002::/16", // deprecated 6to4, embeds arbitrary IPv4 addresses
  "3fff::/20", // documentation
  "5f00::/16", // SRv6 segment identifiers
  "fc00::/7", // unique local (private)
  "fe80::/10", // link-local
  "fec0::/10", // deprecated site-local
  "ff00::/8", // multicast
];

const NAT64_PREFIX = "64:ff9b::";

const SPECIAL_USE = networkBlockList(SPECIAL_USE_NETWORKS.flatMap(withNat64Form));

function withNat64Form(entry: string): string[] {
  const cidr = parseIpNetwork(entry);
  return cidr?.family === "ipv4" ? [entry, `${NAT64_PREFIX}${cidr.address}/${cidr.prefix + 96}`] : [entry];
}

/**
 * Cloud metadata endpoints, which hand out credentials. A host named in `allowed_hosts` may resolve to loopback or
 * private addresses, but not to one of these unless `allowed_hosts` names that address itself.
 */
const METADATA_NETWORKS = [
  "169.254.0.0/16", // link-local: AWS, Azure, GCP and OpenStack (169.254.169.254), AWS ECS (169.254.170.2)
  "100.100.100.200/32", // Alibaba Cloud
  "fd00:ec2::254/128", // AWS over IPv6
  "fd20:ce::254/128", // Google Cloud over IPv6
];

const METADATA = networkBlockList(METADATA_NETWORKS.flatMap(withNat64Form));

/** Decides whether the provider may connect to an IP address. */
export type AddressPolicy = (address: string) => boolean;

/** The address policy for the host of one URL (the WHATWG-normalized host, IPv6 in brackets). */
export type TargetPolicy = (host: string) => AddressPolicy;

/** An address without its zone id (`fe80::1%eth0`, which does not change the range) and its family. */
function ipOf(address: string): { bare: string; family: "ipv4" | "ipv6" } | null {
  const bare = address.replace(/%.*$/, "");
  const version = isIP(bare);
  return version === 0 ? null : { bare, family: version === 4 ? "ipv4" : "ipv6" };
}

const within = (list: BlockList, address: string) => {
  const ip = ipOf(address);
  return ip !== null && list.check(ip.bare, ip.family);
};

/** Public addresses are allowed; special-use ones only with `allow_private_networks` or within `allowed_networks`. */
export function createAddressPolicy(
  config: Pick<HttpProviderConfig, "allow_private_networks" | "allowed_networks">,
): AddressPolicy {
  if (config.allow_private_networks) return () => true;
  const allowed = networkBlockList(config.allowed_networks ?? []);
  return (address) => ipOf(address) !== null && (within(allowed, address) || !within(SPECIAL_USE, address));
}

/**
 * A host listed in `allowed_hosts` is an explicit opt-in (D15): an IP literal listed there is reachable whatever
 * its range, and a listed host name may resolve to any address except a metadata endpoint that is not itself
 * listed. Every other host gets the address policy of `createAddressPolicy`.
 */
export function createTargetPolicy(
  config: Pick<HttpProviderConfig, "allow_private_networks" | "allowed_networks" | "allowed_hosts">,
): TargetPolicy {
  const allows = createAddressPolicy(config);
  const listed = new Set(config.allowed_hosts ?? []);
  const named = networkBlockList(
    [...listed].map((host) => host.replace(/^\[(.*)\]$/, "$1")).filter((host) => ipOf(host) !== null),
  );
  const allowsListed: AddressPolicy = (address) =>
    allows(address) || within(named, address) || (ipOf(address) !== null && !within(METADATA, address));
  return (host) => (listed.has(host) ? allowsListed : allows);
}

const refusal = (address: string) => `http target address not allowed: ${address}`;

class RefusedAddressError extends Error {
  constructor(address: string) {
    super(refusal(address));
  }
}

/**
 * Resolves like `dns.lookup` but fails when ANY resolved address is refused, so the address the socket connects
 * to has always been checked (no DNS rebinding between a check and the connection).
 */
function guardedLookup(allows: AddressPolicy): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true as const }, (error, addresses) => {
      const refused = error ? undefined : addresses.find((entry) => !allows(entry.address));
      const first = error ? undefined : addresses[0];
      if (error) callback(error, "", 0);
      else if (refused) callback(new RefusedAddressError(refused.address), "", 0);
      else if (first === undefined) callback(new Error(`no address for ${hostname}`), "", 0);
      else if (options.all) callback(null, addresses);
      else callback(null, first.address, first.family);
    });
  };
}

interface Settings {
  allowHttp: boolean;
  allowedHosts: ReadonlySet<string> | undefined;
  timeoutMs: number;
  maxResponseBytes: number;
  /** The configured `user_agent` as its UTF-8 bytes, one character each: Node writes header strings as Latin-1. */
  userAgentBytes: string;
  policy: TargetPolicy;
}

type Check = (response: IncomingMessage, settings: Settings, signal: AbortSignal) => Promise<JsonValue>;

const CHECKS: ReadonlyMap<string, Check> = new Map([
  ["status", statusOf],
  ["body_hash", bodyHashOf],
]);

/**
 * The built-in `http` provider (evidence §1.5): `status` answers the status code of a GET, `body_hash` the
 * sha256 of its body. Redirects are never followed. Unlike the reference, targets in loopback, private and
 * other special-use networks are refused unless the config allows them or `allowed_hosts` names the host.
 */
export function createHttpProvider(config: HttpProviderConfig): EvidenceProvider {
  const settings: Settings = {
    allowHttp: config.allow_http,
    allowedHosts: config.allowed_hosts === undefined ? undefined : new Set(config.allowed_hosts),
    timeoutMs: Math.min(Number(config.timeout_ms), LONGEST_TIMER_MS),
    maxResponseBytes: Number(config.max_response_bytes),
    userAgentBytes: Buffer.from(config.user_agent, "utf8").toString("latin1"),
    policy: createTargetPolicy(config),
  };
  return {
    providerId: "http",
    async query(query: EvidenceQuery) {
      const url = permittedUrl(urlParam(query.params), settings);
      const check = CHECKS.get(query.check_id) ?? fail("unsupported http check");
      const value = await exchange(url, settings, check);
      const target = withoutCredentials(url);
      return jsonEvidence(value, {
        evidence_ref: { uri: target },
        evidence_anchor: { anchor_type: "url", anchor_value: target },
      });
    },
  };
}

function fail(message: string): never {
  throw new EvidenceProviderFailure(message);
}

function urlParam(params: EvidenceQuery["params"]): string {
  if (params === undefined || params === null) fail("http check requires params");
  if (!isJsonObject(params)) fail("http params must be an object");
  const url = params.url;
  if (url === undefined) fail("missing url param");
  if (typeof url !== "string") fail("url param must be a string");
  return url;
}

function permittedUrl(text: string, settings: Settings): URL {
  const url = URL.canParse(text) ? new URL(text) : fail("invalid url");
  if (url.protocol !== "https:" && !(url.protocol === "http:" && settings.allowHttp)) fail("unsupported url scheme");
  if (url.hostname === "") fail("url host required");
  if (settings.allowedHosts !== undefined && !settings.allowedHosts.has(url.hostname)) fail("url host not allowed");
  return url;
}

/**
 * The reference anchors the full serialized URL, so credentials in it (`https://user:secret@host/`) would end up
 * in run state and runpacks. The anchor and ref keep everything but the userinfo.
 */
function withoutCredentials(url: URL): string {
  const copy = new URL(url.href);
  copy.username = "";
  copy.password = "";
  return copy.href;
}

/** One GET, with `timeoutMs` covering everything from connecting to the last body byte. */
async function exchange(url: URL, settings: Settings, check: Check): Promise<JsonValue> {
  const allows = settings.policy(url.hostname);
  refuseLiteralAddress(url, allows);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), settings.timeoutMs);
  try {
    const response = await send(url, settings.userAgentBytes, allows, controller.signal);
    try {
      // The signal also errors a body that is still streaming in, so the deadline covers the whole read.
      return await check(addAbortSignal(controller.signal, response), settings, controller.signal);
    } finally {
      response.destroy();
    }
  } finally {
    clearTimeout(timer);
  }
}

/** `lookup` is not consulted for IP-literal hosts, so those are checked here. */
function refuseLiteralAddress(url: URL, allows: AddressPolicy): void {
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  if (isIP(host) !== 0 && !allows(host)) fail(refusal(host));
}

function send(url: URL, userAgent: string, allows: AddressPolicy, signal: AbortSignal): Promise<IncomingMessage> {
  const options: RequestOptions = {
    ...urlToHttpOptions(url),
    method: "GET",
    headers: { "User-Agent": userAgent },
    agent: false, // a pooled socket could be connected to an address this provider never checked
    lookup: guardedLookup(allows),
    signal,
  };
  const request = url.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const outgoing = request(options, resolve);
    outgoing.on("error", (error) => {
      reject(new EvidenceProviderFailure(error instanceof RefusedAddressError ? error.message : "http request failed"));
    });
    outgoing.end();
  });
}

async function statusOf(response: IncomingMessage): Promise<JsonValue> {
  return BigInt(response.statusCode ?? 0);
}

async function bodyHashOf(response: IncomingMessage, settings: Settings, signal: AbortSignal): Promise<JsonValue> {
  const declared = declaredLength(response);
  if (declared !== undefined && declared > settings.maxResponseBytes) fail("http response exceeds size limit");
  const { body, complete } = await readBody(response, settings.maxResponseBytes);
  if (!complete && signal.aborted) fail("failed to read response"); // timed out
  if (declared !== undefined && body.length < declared) fail("http response truncated");
  if (!complete) fail("failed to read response");
  const digest = hashBytes(body);
  return { algorithm: digest.algorithm, value: digest.value };
}

function declaredLength(response: IncomingMessage): number | undefined {
  const header = response.headers["content-length"];
  return header === undefined ? undefined : Number(header);
}

/** Reads at most `maxBytes + 1` bytes; `complete` is false when the stream failed (what arrived is kept). */
async function readBody(response: IncomingMessage, maxBytes: number): Promise<{ body: Buffer; complete: boolean }> {
  const chunks: Buffer[] = [];
  let received = 0;
  let complete = true;
  try {
    for await (const chunk of response as AsyncIterable<Buffer>) {
      received += chunk.length;
      if (received > maxBytes) fail("http response exceeds size limit");
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof EvidenceProviderFailure) throw error;
    complete = false;
  }
  return { body: Buffer.concat(chunks), complete };
}
