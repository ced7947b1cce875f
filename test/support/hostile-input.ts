import fc from "fast-check";
import type { JsonObject, JsonValue } from "../../src/json/value.js";
import { compactJson } from "../../src/json/write.js";

/** A tool as `tools/list` describes it: its name and the property names of its input schema. */
export interface ToolShape {
  name: string;
  properties: string[];
}

/**
 * A key no tool's input schema declares. Every tool schema forbids additional properties, so a `tools/call` whose
 * arguments hold it is refused before the tool runs: no generated call can legitimately change state.
 */
export const POISON_KEY = "hostile_input_undeclared_field";

const utf8 = (text: string) => new Uint8Array(Buffer.from(text, "utf8"));

const hostileText = fc.oneof(
  fc.string({ maxLength: 24 }),
  fc.string({ unit: "binary", maxLength: 24 }),
  fc.constantFrom(
    "",
    "\u0000",
    "run-1\u0000",
    "\ud800",
    "a\udfffb",
    "\u202etxt.exe",
    "💥🧨",
    "\u00e9\u0301",
    "../../../etc/passwd",
    "%s%s%n",
    "$(id)",
    "Content-Length: 5",
    "\r\n\r\n",
  ),
);

const hugeInteger = fc.oneof(
  fc.bigInt({ min: -(2n ** 200n), max: 2n ** 200n }),
  fc.constantFrom(2n ** 53n + 1n, 2n ** 63n, -(2n ** 63n) - 1n, 2n ** 64n, 2n ** 64n - 1n),
);

const leaf: fc.Arbitrary<JsonValue> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer().map(BigInt),
  hugeInteger,
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  hostileText,
);

const key = (names: readonly string[] = []) =>
  fc.oneof(
    hostileText,
    fc.constantFrom("__proto__", "constructor", "prototype", "tenant_id", "namespace_id", "run_id", ...names),
  );

/** Any JSON value: scalars of every kind, small containers, and chains nested up to 200 levels (limit: 128). */
export const hostileValue: fc.Arbitrary<JsonValue> = fc.oneof(
  fc.letrec<{ value: JsonValue }>((tie) => ({
    value: fc.oneof(
      { maxDepth: 4, depthSize: "small" },
      leaf,
      fc.array(tie("value"), { maxLength: 4 }),
      fc.dictionary(key(), tie("value"), { maxKeys: 4, noNullPrototype: true }),
    ),
  })).value,
  fc
    .tuple(fc.integer({ min: 1, max: 200 }), leaf, fc.boolean())
    .map(([depth, inner, arrays]) =>
      Array.from({ length: depth }).reduce<JsonValue>((value) => (arrays ? [value] : { nested: value }), inner),
    ),
);

/** A JSON-RPC id: usable ones (integers, also beyond 2^53, and strings) and wrong-typed ones. */
const anyId: fc.Arbitrary<JsonValue> = fc.oneof(fc.integer().map(BigInt), hugeInteger, hostileText, hostileValue);
const usableId: fc.Arbitrary<JsonValue> = fc.oneof(fc.integer().map(BigInt), hostileText);

/** Tool arguments that no tool accepts: the declared properties with random values, plus the poison key. */
function poisonedArguments(tool: ToolShape | null): fc.Arbitrary<JsonObject> {
  const names = tool?.properties ?? [];
  return fc
    .tuple(fc.dictionary(key(names), hostileValue, { maxKeys: 6, noNullPrototype: true }), hostileValue)
    .map(([args, poison]) => {
      const poisoned: JsonObject = {};
      for (const [name, value] of Object.entries(args)) {
        Object.defineProperty(poisoned, name, { value, enumerable: true, writable: true, configurable: true });
      }
      poisoned[POISON_KEY] = poison;
      return poisoned;
    });
}

/**
 * `tools/call` params: a known or random tool name with poisoned arguments, or params of the wrong shape
 * (arguments not an object, a name that is not a string, no name). None can succeed in changing state.
 */
function toolCallParams(tools: readonly ToolShape[]): fc.Arbitrary<JsonValue> {
  const known = fc
    .constantFrom(...tools)
    .chain((tool) => fc.record({ name: fc.constant(tool.name), arguments: poisonedArguments(tool) }));
  const renamed = fc.constantFrom(...tools).chain((tool) =>
    fc.record({
      name: fc.constantFrom(tool.name.toUpperCase(), ` ${tool.name}`, `${tool.name}\u0000`, `${tool.name}/..`),
      arguments: poisonedArguments(tool),
    }),
  );
  const random = fc.record({ name: hostileText, arguments: poisonedArguments(null) });
  const wrongArguments = fc.record({
    name: fc.constantFrom(...tools.map((tool) => tool.name)),
    arguments: fc.oneof(fc.array(hostileValue, { maxLength: 3 }), leaf),
  });
  const wrongName = fc.record({ name: fc.oneof(leaf, hostileValue).filter((name) => typeof name !== "string") });
  return fc.oneof(known, renamed, random, wrongArguments, wrongName);
}

const METHODS = ["tools/call", "tools/list", "resources/list", "resources/read", "initialize", "ping"];

/**
 * JSON-RPC envelopes, each invalid in some way or harmless: tools/call with refused arguments, unknown methods,
 * and envelopes whose id, method, params or version has the wrong type or is missing.
 */
export function hostileEnvelopes(tools: readonly ToolShape[]): fc.Arbitrary<JsonObject> {
  const toolCall = fc.record({
    jsonrpc: fc.constant("2.0"),
    id: usableId,
    method: fc.constant("tools/call"),
    params: toolCallParams(tools),
  });
  const unknownMethod = fc.record(
    {
      jsonrpc: fc.constant("2.0"),
      id: anyId,
      method: fc.oneof(
        hostileText.filter((method) => !METHODS.includes(method)),
        fc.constantFrom("tools/cal", "TOOLS/LIST", "rpc.discover", "$/cancelRequest", "shutdown"),
      ),
      params: hostileValue,
    },
    { requiredKeys: ["jsonrpc", "method"] },
  );
  const wrongTypes = fc
    .record(
      {
        jsonrpc: fc.oneof(fc.constantFrom("2.0", "1.0", "2", 2n), leaf),
        id: anyId,
        method: fc.oneof(fc.constantFrom(...METHODS), leaf, hostileValue),
        params: hostileValue,
        extra: hostileValue,
      },
      { requiredKeys: [] },
    )
    .map((envelope) => {
      // A `tools/call` params object that came out well-formed still gets refused arguments.
      if (envelope.method === "tools/call" && typeof envelope.params === "object" && envelope.params !== null) {
        return { ...envelope, params: { name: "scenario_define", arguments: { [POISON_KEY]: true } } };
      }
      return envelope;
    });
  return fc.oneof(toolCall, unknownMethod, wrongTypes) as fc.Arbitrary<JsonObject>;
}

/**
 * One hostile message body: random bytes, truncated or corrupted JSON, JSON with trailing garbage, valid JSON that
 * is not JSON-RPC, hostile envelopes, and envelopes padded beyond `maxBodyBytes`.
 */
export function hostileBodies(tools: readonly ToolShape[], maxBodyBytes: number): fc.Arbitrary<Uint8Array> {
  const envelopeText = hostileEnvelopes(tools).map((envelope) => compactJson(envelope));
  return fc.oneof(
    { arbitrary: envelopeText.map(utf8), weight: 4 },
    { arbitrary: fc.uint8Array({ maxLength: 256 }), weight: 1 },
    {
      arbitrary: envelopeText.chain((text) =>
        fc.integer({ min: 0, max: Math.max(0, text.length - 1) }).map((end) => utf8(text.slice(0, end))),
      ),
      weight: 1,
    },
    {
      arbitrary: fc
        .tuple(envelopeText, fc.nat(), fc.constantFrom("{", "}", '"', ",", ":", "\\", "\u0000", "]", "nul"))
        .map(([text, at, insert]) =>
          utf8(text.slice(0, at % (text.length + 1)) + insert + text.slice(at % (text.length + 1))),
        ),
      weight: 1,
    },
    {
      arbitrary: fc
        .tuple(envelopeText, fc.constantFrom("x", "}", "{}", ' {"jsonrpc":"2.0"}', "\u0000", "garbage"))
        .map(([text, garbage]) => utf8(text + garbage)),
      weight: 1,
    },
    { arbitrary: hostileValue.map((value) => utf8(compactJson(value))), weight: 1 },
    {
      arbitrary: fc.array(hostileEnvelopes(tools), { maxLength: 3 }).map((batch) => utf8(compactJson(batch))),
      weight: 1,
    },
    {
      arbitrary: fc.integer({ min: maxBodyBytes + 1, max: maxBodyBytes * 2 }).map((size) => {
        const call = (pad: string) =>
          `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"scenarios_list","arguments":{"${POISON_KEY}":"${pad}"}}}`;
        return utf8(call("x".repeat(size - call("").length)));
      }),
      weight: 1,
    },
  );
}

/** The JSON-RPC rules every answer must meet: version 2.0, an id, and exactly one of `result` and `error`. */
export function isJsonRpcResponse(value: JsonValue): boolean {
  if (typeof value !== "object" || value === null || Array.isArray(value) || value instanceof Uint8Array) return false;
  const { jsonrpc, id, result, error } = value as JsonObject;
  if (jsonrpc !== "2.0" || id === undefined || (result === undefined) === (error === undefined)) return false;
  if (error === undefined) return true;
  const { code, message } = error as JsonObject;
  return typeof code === "bigint" && typeof message === "string";
}

/** Ids compared as JSON-RPC does, by value: `1`, `1.0` and `1e0` are one id. */
export function sameId(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  return a !== undefined && b !== undefined && compactJson(a) === compactJson(b);
}

/** Lines of newline-delimited input: hostile bodies, some with CR line ends, blank lines or trailing garbage. */
export function hostileLines(tools: readonly ToolShape[], maxBodyBytes: number): fc.Arbitrary<Uint8Array> {
  const line = fc.oneof(
    { arbitrary: hostileBodies(tools, maxBodyBytes), weight: 6 },
    {
      arbitrary: hostileBodies(tools, maxBodyBytes).map((body) => Buffer.concat([body, Buffer.from("\r")])),
      weight: 1,
    },
    { arbitrary: fc.constantFrom("", " ", "\t\r").map(utf8), weight: 1 },
  );
  return fc
    .array(line, { minLength: 1, maxLength: 3 })
    .map((lines) => new Uint8Array(Buffer.concat([...lines.flatMap((bytes) => [bytes, Buffer.from("\n")])])));
}

/** One Content-Length framed input; `clean` when its header is usable and its length exact. */
export interface HostileFrame {
  bytes: Uint8Array;
  clean: boolean;
  body: Uint8Array;
}

const LENGTH_HEADER = "Content-Length";

/**
 * Content-Length framed inputs: exact frames with header variants (LF line ends, other headers, duplicated
 * lengths where the last is right, padding, oversized bodies sent in full) and garbled ones (negative,
 * non-numeric, fractional or huge lengths, a lowercase or missing header, duplicated lengths where the last is
 * wrong, a header block beyond 8 KiB, a length that does not match the body, bare bytes). Garbled bodies never
 * hold a `Content-Length` text, so reading resumes at the next real frame.
 */
export function hostileFrames(tools: readonly ToolShape[], maxBodyBytes: number): fc.Arbitrary<HostileFrame> {
  const bodies = hostileBodies(tools, maxBodyBytes);
  const frame = (header: string, body: Uint8Array, clean: boolean): HostileFrame => ({
    bytes: new Uint8Array(Buffer.concat([Buffer.from(header, "latin1"), body])),
    clean,
    body,
  });
  const clean = fc
    .tuple(
      bodies,
      fc.constantFrom(
        (n: number) => `${LENGTH_HEADER}: ${n}\r\n\r\n`,
        (n: number) => `${LENGTH_HEADER}: ${n}\n\n`,
        (n: number) => `Content-Type: application/json\r\n${LENGTH_HEADER}: ${n}\r\n\r\n`,
        (n: number) => `${LENGTH_HEADER}: 3\r\n${LENGTH_HEADER}: ${n}\r\n\r\n`,
        (n: number) => `${LENGTH_HEADER}:    ${n}   \r\n\r\n`,
        (n: number) => `${LENGTH_HEADER}: ${String(n).padStart(15, "0")}\r\n\r\n`,
      ),
    )
    .map(([body, header]) => frame(header(body.length), body, true));
  const garbledBody = bodies.filter((body) => !Buffer.from(body).includes(LENGTH_HEADER));
  const unusable = fc
    .tuple(
      garbledBody,
      fc.constantFrom(
        (n: number) => `${LENGTH_HEADER}: -${n}\r\n\r\n`,
        (n: number) => `${LENGTH_HEADER}: +${n}\r\n\r\n`,
        (n: number) => `${LENGTH_HEADER}: ${n}.0\r\n\r\n`,
        (n: number) => `${LENGTH_HEADER}: ${n}, ${n}\r\n\r\n`,
        (n: number) => `${LENGTH_HEADER}: 0x${n.toString(16)}\r\n\r\n`,
        () => `${LENGTH_HEADER}: abc\r\n\r\n`,
        () => `${LENGTH_HEADER}: \r\n\r\n`,
        () => `${LENGTH_HEADER}: 1234567890123456\r\n\r\n`,
        () => `${LENGTH_HEADER}: 99999999999999999999999\r\n\r\n`,
        (n: number) => `content-length: ${n}\r\n\r\n`,
        (n: number) => `${LENGTH_HEADER} : ${n}\r\n\r\n`,
        (n: number) => `${LENGTH_HEADER}: ${n}\r\n${LENGTH_HEADER}: x\r\n\r\n`,
        () => "Content-Type: application/json\r\n\r\n",
        () => `X-Padding: ${"a".repeat(9000)}\r\n\r\n`,
      ),
    )
    .map(([body, header]) => frame(header(body.length), body, false));
  const lying = fc
    .tuple(garbledBody, fc.integer({ min: 0, max: maxBodyBytes }))
    .filter(([body, length]) => body.length !== length)
    .map(([body, length]) => frame(`${LENGTH_HEADER}: ${length}\r\n\r\n`, body, false));
  const bare = garbledBody.filter((body) => body.length > 0).map((body) => frame("", body, false));
  return fc.oneof({ arbitrary: clean, weight: 3 }, unusable, lying, bare);
}

/**
 * Raw HTTP requests with broken framing: random bytes, malformed request lines, negative, non-numeric, huge,
 * duplicated or missing lengths, lengths that disagree with the body, `Transfer-Encoding` beside `Content-Length`
 * and malformed chunks. Each asks for the connection to close, so the server's last word ends the exchange.
 */
export function hostileHttpRequests(tools: readonly ToolShape[], maxBodyBytes: number): fc.Arbitrary<Uint8Array> {
  const head = (requestLine: string, headers: string[]) =>
    `${requestLine}\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nConnection: close\r\n${headers.map((header) => `${header}\r\n`).join("")}\r\n`;
  const post = "POST /rpc HTTP/1.1";
  const framings = fc.constantFrom(
    (body: Buffer) => head(post, [`Content-Length: -${body.length}`]),
    (body: Buffer) => head(post, [`Content-Length: ${body.length}abc`]),
    (_body: Buffer) => head(post, ["Content-Length: 99999999999999999999"]),
    (body: Buffer) => head(post, [`Content-Length: ${body.length}`, `Content-Length: ${body.length + 1}`]),
    (body: Buffer) => head(post, [`Content-Length: ${Math.max(0, body.length - 3)}`]),
    (_body: Buffer) => head(post, []),
    (body: Buffer) => head(post, [`Content-Length: ${body.length}`, "Transfer-Encoding: chunked"]),
    (_body: Buffer) => head(post, ["Transfer-Encoding: chunked"]),
    (body: Buffer) => head("POST /mcp HTTP/1.1", [`Content-Length: ${body.length}`, "Content-Length: 0"]),
    (body: Buffer) => head("POST  /rpc  HTTP/1.1", [`Content-Length: ${body.length}`]),
    (body: Buffer) => head("POST /rpc HTTP/9.9", [`Content-Length: ${body.length}`]),
    (body: Buffer) => head("POST /rpc?%zz\u0000 HTTP/1.1", [`Content-Length: ${body.length}`]),
    (body: Buffer) => head(post, [`Content-Length: ${body.length}`, "X-Folded: a\r\n b"]),
    (body: Buffer) => head(post, [`Content-Length: ${body.length}`, "X-Nul: a\u0000b"]),
  );
  const chunked = (body: Buffer) =>
    fc
      .constantFrom(`zz\r\n`, `${body.length.toString(16)}\r\n`, "-1\r\n", "ffffffffffffffff\r\n")
      .map((size) => Buffer.concat([Buffer.from(size), body, Buffer.from("\r\n0\r\n\r\n")]));
  const framed = fc
    .tuple(
      hostileBodies(tools, maxBodyBytes).map((body) => Buffer.from(body)),
      framings,
    )
    .chain(([body, framing]) => {
      const header = Buffer.from(framing(body), "latin1");
      const payload = header.includes("chunked") ? chunked(body) : fc.constant(body);
      return payload.map((bytes) => new Uint8Array(Buffer.concat([header, bytes])));
    });
  return fc.oneof({ arbitrary: framed, weight: 4 }, fc.uint8Array({ minLength: 1, maxLength: 512 }));
}
