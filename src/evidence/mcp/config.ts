import { z } from "zod";

/*
 * The keys of an `[[providers]] type = "mcp"` table that the MCP client needs (evidence §2.1). Other keys of the
 * table (`name`, `capabilities_path`, `trust`, `allow_raw`, ...) belong to the registry and are dropped here.
 * Integers arrive as `bigint` (the JSON model, and the TOML loader) and come out as `number`.
 */

function integerBetween(min: number, max: number, unit = "") {
  const message = `must be between ${min} and ${max}${unit}`;
  return z
    .bigint({ error: "expected an integer" })
    .gte(BigInt(min), { error: message })
    .lte(BigInt(max), { error: message })
    .transform(Number);
}

function isHttpUrl(text: string): boolean {
  return URL.canParse(text) && /^https?:\/\//.test(text);
}

const nonBlank = (what: string) => z.string().refine((text) => text.trim().length > 0, `${what} must be non-empty`);

export const McpTimeouts = z
  .object({
    connect_timeout_ms: integerBetween(100, 10_000, " milliseconds").default(2_000),
    request_timeout_ms: integerBetween(500, 30_000, " milliseconds").default(10_000),
  })
  .refine((timeouts) => timeouts.request_timeout_ms >= timeouts.connect_timeout_ms, {
    path: ["request_timeout_ms"],
    error: "request_timeout_ms must be >= connect_timeout_ms",
  });
export type McpTimeouts = z.output<typeof McpTimeouts>;

/**
 * `decision_gate`: the reference's raw protocol (no `initialize`; Content-Length framing on stdio).
 * `mcp`: a standard MCP server (`initialize` handshake; newline-delimited JSON on stdio; Streamable HTTP).
 */
export const McpProtocol = z.enum(["decision_gate", "mcp"]);
export type McpProtocol = z.output<typeof McpProtocol>;

export const McpProviderSettings = z
  .object({
    command: z.array(z.string()).default([]),
    url: z
      .string()
      .nullish()
      .transform((url) => url ?? null),
    allow_insecure_http: z.boolean().default(false),
    auth: z
      .object({ bearer_token: nonBlank("auth.bearer_token").nullish() })
      .nullish()
      .transform((auth) => ({ bearer_token: auth?.bearer_token ?? null })),
    timeouts: McpTimeouts.default({ connect_timeout_ms: 2_000, request_timeout_ms: 10_000 }),
    protocol: McpProtocol.default("decision_gate"),
    // The reference neither retries, nor times out stdio calls, nor refuses redirects: each is opt-in here.
    max_retries: integerBetween(0, 5).default(0),
    retry_backoff_ms: integerBetween(0, 10_000, " milliseconds").default(100),
    stdio_request_timeout_ms: integerBetween(500, 300_000, " milliseconds")
      .nullish()
      .transform((timeout) => timeout ?? null),
    follow_redirects: z.boolean().default(true),
  })
  .superRefine((settings, context) => {
    const urlIssue = (message: string) => context.addIssue({ code: "custom", path: ["url"], message });
    if (settings.url === null) {
      if (settings.command.length === 0) urlIssue("mcp provider requires command or url");
    } else if (!isHttpUrl(settings.url)) {
      urlIssue("url must be an http:// or https:// URL");
    } else if (settings.url.startsWith("http://") && !settings.allow_insecure_http) {
      urlIssue("insecure http disabled for provider");
    }
  });

export type McpProviderSettings = z.output<typeof McpProviderSettings>;
export type McpProviderSettingsInput = z.input<typeof McpProviderSettings>;

/** Where requests go: a child process (stdio wins when `command` is set, as in the reference) or a URL. */
export function transportKind(settings: McpProviderSettings): "stdio" | "http" {
  return settings.command.length > 0 ? "stdio" : "http";
}
