import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";

export interface TlsFiles {
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A client certificate from a CA the server does not trust. */
  strangerCert: string;
  strangerKey: string;
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
}

/** `openssl req` arguments for a fresh, unencrypted P-256 key. */
const NEW_EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

function keyAndRequest(dir: string, name: string, subject: string): void {
  openssl(dir, "req", ...NEW_EC_KEY, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject);
}

function signWith(dir: string, ca: string, name: string, extensions: string): void {
  writeFileSync(join(dir, `${name}.ext`), extensions);
  openssl(
    dir,
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    `${ca}.crt`,
    "-CAkey",
    `${ca}.key`,
    "-CAcreateserial",
    "-out",
    `${name}.crt`,
    "-days",
    "2",
    "-extfile",
    `${name}.ext`,
  );
}

function certificateAuthority(dir: string, name: string, subject: string): void {
  openssl(
    dir,
    "req",
    "-x509",
    ...NEW_EC_KEY,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.crt`,
    "-subj",
    subject,
    "-days",
    "2",
  );
}

/** Generates a test CA, a server certificate for 127.0.0.1, and client certificates (trusted and not) in `dir`. */
export function generateTlsFiles(dir: string): TlsFiles {
  certificateAuthority(dir, "ca", "/CN=Decision Gate Test CA");
  certificateAuthority(dir, "stranger-ca", "/CN=Somebody Else's CA");
  keyAndRequest(dir, "server", "/CN=localhost");
  signWith(dir, "ca", "server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  keyAndRequest(dir, "client", "/CN=agent-1/O=Example");
  signWith(dir, "ca", "client", "extendedKeyUsage=clientAuth\n");
  keyAndRequest(dir, "stranger", "/CN=agent-1/O=Example");
  signWith(dir, "stranger-ca", "stranger", "extendedKeyUsage=clientAuth\n");
  const at = (file: string) => join(dir, file);
  return {
    caCert: at("ca.crt"),
    serverCert: at("server.crt"),
    serverKey: at("server.key"),
    clientCert: at("client.crt"),
    clientKey: at("client.key"),
    strangerCert: at("stranger.crt"),
    strangerKey: at("stranger.key"),
  };
}

export interface HttpsResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTPS POST trusting `ca`, optionally presenting a client certificate. */
export function httpsPost(
  url: string,
  body: string,
  options: { ca: string; cert?: string; key?: string; headers?: Record<string, string> },
): Promise<HttpsResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: "POST",
        ca: readFileSync(options.ca),
        cert: options.cert === undefined ? undefined : readFileSync(options.cert),
        key: options.key === undefined ? undefined : readFileSync(options.key),
        headers: { "content-type": "application/json", ...options.headers },
        agent: false,
      },
      (response) => {
        let text = "";
        response.on("data", (chunk) => {
          text += chunk;
        });
        response.on("end", () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: text }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}
