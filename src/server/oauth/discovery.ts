import { z } from "zod";
import { oauthUrlProblem } from "../../config/schema.js";

const FETCH_TIMEOUT_MS = 5_000;
const MAX_DOCUMENT_BYTES = 262_144;

/** The fields of RFC 8414 / OpenID Connect discovery metadata a resource server relies on. */
const AuthorizationServerMetadata = z.object({ issuer: z.string(), jwks_uri: z.string() });

/**
 * Where the issuer's metadata lives: RFC 8414 inserts the well-known path before the issuer's path, OpenID Connect
 * Discovery appends it; both are tried, in that order, as MCP clients do.
 */
export function metadataUrls(issuer: string): string[] {
  const url = new URL(issuer);
  const path = url.pathname === "/" ? "" : url.pathname.replace(/\/$/, "");
  return [
    `${url.origin}/.well-known/oauth-authorization-server${path}`,
    `${url.origin}${path}/.well-known/openid-configuration`,
  ];
}

/**
 * The authorization server's `jwks_uri`, from its discovery metadata. The metadata must name the configured issuer
 * exactly (RFC 8414 §3.3), or a server that answers at the issuer's address could hand out keys for another.
 */
export async function discoverJwksUri(issuer: string): Promise<string> {
  const failures: string[] = [];
  for (const url of metadataUrls(issuer)) {
    let json: unknown;
    try {
      json = await fetchJson(url, "application/json");
    } catch (error) {
      failures.push((error as Error).message);
      continue;
    }
    return jwksUriOf(issuer, url, json);
  }
  throw new Error(`authorization server metadata not found (${failures.join("; ")})`);
}

/** A JSON document of the authorization server (metadata, key set): no redirects, bounded in time and size. */
export async function fetchJson(url: string, accept: string): Promise<unknown> {
  const response = await fetch(url, {
    headers: { accept },
    redirect: "error",
    signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
  }).catch((error: unknown) => {
    throw new Error(`${url}: ${(error as Error).message}`);
  });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  const text = await response.text();
  if (Buffer.byteLength(text) > MAX_DOCUMENT_BYTES) throw new Error(`${url}: document too large`);
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${url}: not JSON`);
  }
}

function jwksUriOf(issuer: string, url: string, json: unknown): string {
  const metadata = AuthorizationServerMetadata.safeParse(json);
  if (!metadata.success) throw new Error(`${url}: metadata lacks issuer or jwks_uri`);
  if (metadata.data.issuer !== issuer) throw new Error(`${url}: metadata names issuer ${metadata.data.issuer}`);
  const problem = oauthUrlProblem(metadata.data.jwks_uri);
  if (problem !== undefined) throw new Error(`${url}: jwks_uri ${problem}`);
  return metadata.data.jwks_uri;
}
