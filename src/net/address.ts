import { BlockList, isIP, isIPv4, isIPv6 } from "node:net";

/*
 * Network addresses as configuration writes them and requests carry them: IP-literal bind addresses, IP networks
 * (CIDR), loopback, `Host` headers and web origins. Parsing only; nothing here opens a socket or resolves a name.
 */

export interface BindAddress {
  host: string;
  port: number;
  family: 4 | 6;
}

/** Parses an IP-literal socket address (`127.0.0.1:4000`, `[::1]:4000`); host names are not accepted. */
export function parseBind(bind: string): BindAddress | null {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(bind);
  if (match === null) return null;
  const port = Number(match[3]);
  if (port > 65_535) return null;
  const [, bracketed, plain] = match;
  if (bracketed !== undefined) return isIPv6(bracketed) ? { host: bracketed, port, family: 6 } : null;
  return plain !== undefined && isIPv4(plain) ? { host: plain, port, family: 4 } : null;
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");

/** 127.0.0.0/8 and ::1, including the IPv4-mapped form `::ffff:127.x.y.z` that dual-stack sockets report (D6). */
export function isLoopbackAddress(ip: string): boolean {
  const family = isIP(ip);
  return family !== 0 && LOOPBACK.check(ip, family === 4 ? "ipv4" : "ipv6");
}

export function isLoopbackBind(bind: string): boolean {
  const address = parseBind(bind);
  return address !== null && isLoopbackAddress(address.host);
}

/**
 * A `Host` header (`name`, `1.2.3.4` or `[::1]`, each with an optional `:port`) as browsers and URL parsers read it,
 * lower-cased with IP literals normalized (`127.1` → `127.0.0.1`): `host` keeps a non-default port (as in an origin),
 * `hostname` has no port nor final dot; null when it is not a host.
 */
export function parseHostHeader(text: string): { host: string; hostname: string } | null {
  if (!/^[A-Za-z0-9._:[\]-]+$/.test(text)) return null;
  try {
    const url = new URL(`http://${text}`);
    return { host: url.host, hostname: url.hostname.replace(/\.$/, "") };
  } catch {
    return null;
  }
}

/** A web origin as browsers send it in `Origin` (`http(s)://host[:port]`), serialized; null for anything else. */
export function parseWebOrigin(text: string): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  const web = url.protocol === "http:" || url.protocol === "https:";
  const bare =
    url.pathname === "/" && url.search === "" && url.hash === "" && url.username === "" && url.password === "";
  return web && bare ? url.origin : null;
}

export interface IpNetwork {
  address: string;
  prefix: number;
  family: "ipv4" | "ipv6";
}

/** Parses `address/prefix` or a bare address (a single host), as `server.trusted_proxies` entries are written. */
export function parseIpNetwork(text: string): IpNetwork | null {
  const [address = "", prefixText, ...rest] = text.split("/");
  const version = isIP(address);
  if (version === 0 || rest.length > 0) return null;
  const maxPrefix = version === 4 ? 32 : 128;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return null;
  const prefix = prefixText === undefined ? maxPrefix : Number(prefixText);
  return prefix <= maxPrefix ? { address, prefix, family: version === 4 ? "ipv4" : "ipv6" } : null;
}

/** A `BlockList` of IP networks. Every entry must parse: configuration checks the entries it takes first. */
export function networkBlockList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const network = parseIpNetwork(entry);
    if (network === null) throw new Error(`invalid IP network: ${entry}`);
    list.addSubnet(network.address, network.prefix, network.family);
  }
  return list;
}
