/** How a caller reached the server. */
export type TransportName = "stdio" | "http" | "sse";
/** Which wire dialect the request used: the Decision Gate dialect or standard MCP. */
export type Dialect = "dg" | "mcp";

/** Who the caller is, as established by authentication. */
export interface AuthContext {
  method: "local" | "bearer_token" | "mtls_subject" | "oauth";
  /** `stdio`, `loopback`, the mTLS subject, or the OAuth principal; null for bearer tokens. */
  subject: string | null;
  /** sha256 hex of the bearer token or OAuth access token; never the token itself. */
  tokenFingerprint: string | null;
  /** `stdio`, `loopback`, `token:<sha256 hex>`, the subject or `oauth:<iss>#<sub>`: the id used by policies and audit. */
  principalId: string;
  /** The OAuth access token's scopes; absent for the other methods. */
  scopes?: readonly string[];
}

/** Everything the router needs to know about one call besides its arguments. */
export interface CallContext {
  /** The tool called, or the method (`tools/list`, `resources/read`, ...). */
  action: string;
  transport: TransportName;
  dialect: Dialect;
  auth: AuthContext;
  peerIp: string | null;
  /** The JSON text of the JSON-RPC id (`1` → `"1"`), or null before parsing. */
  requestId: string | null;
  clientCorrelationId: string | null;
  serverCorrelationId: string;
}

export const LOCAL_STDIO: AuthContext = {
  method: "local",
  subject: "stdio",
  tokenFingerprint: null,
  principalId: "stdio",
};
export const LOCAL_LOOPBACK: AuthContext = {
  method: "local",
  subject: "loopback",
  tokenFingerprint: null,
  principalId: "loopback",
};
