import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ContentLengthDecoder,
  type ContentLengthLimits,
  type Decoded,
  decodeStream,
  encodeContentLength,
  encodeLine,
  type FrameDecoder,
  LineDecoder,
} from "../../src/net/framing.js";

type Shown = { body: string } | { error: string; bytes?: number };

/** A message as the hex of its bytes (exact, whatever they are), a problem as its reason. */
function show(decoded: Decoded): Shown {
  if (decoded.kind === "message") return { body: decoded.body.toString("hex") };
  return "bytes" in decoded ? { error: decoded.reason, bytes: decoded.bytes } : { error: decoded.reason };
}

const message = (text: string | Uint8Array): Shown => ({ body: Buffer.from(text).toString("hex") });
const problem = (reason: string, bytes?: number): Shown =>
  bytes === undefined ? { error: reason } : { error: reason, bytes };

/** Everything `decoder` makes of `chunks`, pulled after each push as a transport does, then its end. */
function decodeChunks(decoder: FrameDecoder, chunks: readonly Uint8Array[]): Shown[] {
  const out: Shown[] = [];
  for (const chunk of chunks) {
    decoder.push(chunk);
    for (let decoded = decoder.next(); decoded !== null; decoded = decoder.next()) out.push(show(decoded));
  }
  const last = decoder.end();
  if (last !== null) out.push(show(last));
  return out;
}

function cutAt(bytes: Uint8Array, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let start = 0;
  for (const point of [...points, bytes.length]) {
    chunks.push(Buffer.from(bytes.subarray(start, point)));
    start = point;
  }
  return chunks;
}

const oneByteChunks = (bytes: Uint8Array) => [...bytes].map((byte) => Buffer.from([byte]));
const everyTwoWaySplit = (bytes: Uint8Array) => Array.from({ length: bytes.length + 1 }, (_, at) => cutAt(bytes, [at]));

/** Text with multi-byte UTF-8 characters (2, 3 and 4 bytes), so that cuts fall inside them. */
const UNICODE_BODY = '{"name":"é€😀","note":"Content-Length: 3\\r\\n\\r\\n"}';

const clLimits = { maxHeaderBytes: 64, maxBodyBytes: 32 };
const contentLength = (limits: ContentLengthLimits = clLimits) => new ContentLengthDecoder(limits);
const lines = (maxLineBytes = 16) => new LineDecoder({ maxLineBytes });

const bodies = fc.oneof(
  fc.uint8Array({ maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 12 }).map((text) => new Uint8Array(Buffer.from(text))),
);
const cuts = fc.array(fc.nat(), { maxLength: 8 });

/** Any run of `piece`s decodes alike in one chunk, cut at random points, and byte by byte. */
function expectSameHoweverCut(piece: fc.Arbitrary<Buffer>, decoder: () => FrameDecoder): void {
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 8 }), cuts, (pieces, cutPoints) => {
      const input = Buffer.concat(pieces);
      const whole = decodeChunks(decoder(), [input]);
      expect(decodeChunks(decoder(), cutAt(input, cutPoints))).toEqual(whole);
      expect(decodeChunks(decoder(), oneByteChunks(input))).toEqual(whole);
    }),
  );
}

describe("Content-Length framing", () => {
  it("writes the body's byte length, not its character count", () => {
    expect(encodeContentLength("é").toString("utf8")).toBe("Content-Length: 2\r\n\r\né");
    expect(encodeContentLength(new Uint8Array([0, 255])).toString("hex")).toBe(
      `${Buffer.from("Content-Length: 2\r\n\r\n").toString("hex")}00ff`,
    );
  });

  it("reads back whatever it wrote, however the bytes are cut, several messages per chunk included", () => {
    fc.assert(
      fc.property(fc.array(bodies, { maxLength: 6 }), cuts, (messages, cutPoints) => {
        const input = Buffer.concat(messages.map((body) => encodeContentLength(body)));
        const decoder = contentLength({ maxHeaderBytes: 64, maxBodyBytes: 1024 });
        expect(decodeChunks(decoder, cutAt(input, cutPoints))).toEqual(messages.map(message));
      }),
    );
  });

  it("passes over blank lines before a header only when asked to (the server's stdio)", () => {
    const input = Buffer.concat([encodeContentLength("{}"), Buffer.from("\r\n\n"), encodeContentLength("[]")]);
    const lenient = () => contentLength({ maxHeaderBytes: 64, maxBodyBytes: 1024, skipLeadingBlankLines: true });
    expect(decodeChunks(lenient(), [input])).toEqual([message("{}"), message("[]")]);
    expect(decodeChunks(lenient(), oneByteChunks(input))).toEqual([message("{}"), message("[]")]);
    const strict = decodeChunks(contentLength({ maxHeaderBytes: 64, maxBodyBytes: 1024 }), [input]);
    expect(strict[0]).toEqual(message("{}"));
    expect(strict[1]).toEqual({ error: "missing content length" });
  });

  it("reads the same at every cut position, inside UTF-8 characters included, and byte by byte", () => {
    const input = Buffer.concat([
      Buffer.from(`X-Extra: é\nContent-Length: ${Buffer.byteLength(UNICODE_BODY)}\n\n`),
      Buffer.from(UNICODE_BODY),
      encodeContentLength("😀"),
    ]);
    const expected = [message(UNICODE_BODY), message("😀")];
    const limits = { maxHeaderBytes: 64, maxBodyBytes: 128 };
    for (const chunks of [...everyTwoWaySplit(input), oneByteChunks(input)]) {
      expect(decodeChunks(contentLength(limits), chunks)).toEqual(expected);
    }
  });

  it.each([
    ["CRLF line ends", "Content-Length: 2\r\n\r\n"],
    ["LF line ends", "Content-Length: 2\n\n"],
    ["mixed line ends and another header", "X-Extra: 1\nContent-Length: 2\r\n\r\n"],
    ["a header line ended by LF, then a CRLF blank line", "Content-Length: 2\n\r\n"],
    ["a blank line holding only spaces and tabs", "Content-Length: 2\r\n \t\r\n"],
    ["the last of two lengths", "Content-Length: 5\r\nContent-Length: 2\r\n\r\n"],
    ["the last length after an invalid one", "Content-Length: x\r\nContent-Length: 2\r\n\r\n"],
    ["padding around the value", "Content-Length:   2  \t\r\n\r\n"],
    ["no space after the colon", "Content-Length:2\r\n\r\n"],
    ["a plus sign", "Content-Length: +2\r\n\r\n"],
    ["15 digits", "Content-Length: 000000000000002\r\n\r\n"],
  ])("accepts %s", (_, header) => {
    const input = Buffer.concat([Buffer.from(`${header}{}`), encodeContentLength("[]")]);
    expect(decodeChunks(contentLength(), [input])).toEqual([message("{}"), message("[]")]);
  });

  it.each([
    ["no Content-Length line", "Content-Type: application/json\r\n\r\n", "missing content length"],
    ["a lowercase name", "content-length: 2\r\n\r\n", "missing content length"],
    ["a space before the colon", "Content-Length : 2\r\n\r\n", "missing content length"],
    ["a negative length", "Content-Length: -2\r\n\r\n", "invalid content length"],
    ["a fraction", "Content-Length: 2.0\r\n\r\n", "invalid content length"],
    ["hexadecimal", "Content-Length: 0x2\r\n\r\n", "invalid content length"],
    ["two values", "Content-Length: 2, 2\r\n\r\n", "invalid content length"],
    ["an empty value", "Content-Length: \r\n\r\n", "invalid content length"],
    ["letters", "Content-Length: abc\r\n\r\n", "invalid content length"],
    ["16 digits", "Content-Length: 1234567890123456\r\n\r\n", "invalid content length"],
    ["a value beyond 64 bits", "Content-Length: 99999999999999999999999\r\n\r\n", "invalid content length"],
    ["an invalid last length", "Content-Length: 2\r\nContent-Length: x\r\n\r\n", "invalid content length"],
    ["a header block over the limit", `X-Padding: ${"a".repeat(60)}\r\n\r\n`, "header too large"],
  ])("refuses %s, then reads on from the next Content-Length", (_, header, reason) => {
    const input = Buffer.concat([Buffer.from(`${header}{"a":1}`), encodeContentLength("[]")]);
    const out = decodeChunks(contentLength(), [input]);
    expect(out[0]).toEqual(problem(reason));
    // A second `Content-Length:` line inside the bad block is itself read, and refused, on the way.
    expect(out.slice(1, -1).every((shown) => "error" in shown)).toBe(true);
    expect(out.at(-1)).toEqual(message("[]"));
  });

  it("reads the name only at a line start, though resynchronising looks for it anywhere", () => {
    const input = Buffer.from(' Content-Length: 2\r\n\r\n{"a":1}');
    expect(decodeChunks(contentLength(), [input])).toEqual([problem("missing content length"), message('{"')]);
  });

  it("ends a header block at its first blank line, even a leading one", () => {
    const input = Buffer.from("\r\nContent-Length: 2\r\n\r\n{}");
    expect(decodeChunks(contentLength(), [input])).toEqual([problem("missing content length"), message("{}")]);
  });

  it("takes a header block of exactly the limit and refuses one byte more, whatever the chunking", () => {
    const block = (size: number) =>
      `X: ${"a".repeat(size - "X: \r\nContent-Length: 2\r\n\r\n".length)}\r\nContent-Length: 2\r\n\r\n`;
    expect(Buffer.byteLength(block(64))).toBe(64);
    const exact = Buffer.from(`${block(64)}{}`);
    const over = Buffer.from(`${block(65)}{}`);
    for (const chunks of [[exact], oneByteChunks(exact)]) {
      expect(decodeChunks(contentLength(), chunks)).toEqual([message("{}")]);
    }
    for (const chunks of [[over], oneByteChunks(over)]) {
      expect(decodeChunks(contentLength(), chunks)[0]).toEqual(problem("header too large"));
    }
  });

  it("refuses an endless header line as soon as it passes the limit", () => {
    const decoder = contentLength();
    decoder.push(Buffer.from("X".repeat(64)));
    expect(decoder.next()).toBeNull();
    decoder.push(Buffer.from("X"));
    expect(decoder.next()).toEqual({ kind: "error", reason: "header too large" });
  });

  it("refuses an announced body over the limit before it arrives, skips it, and reads the next frame", () => {
    const decoder = contentLength();
    decoder.push(Buffer.from("Content-Length: 33\r\n\r\n"));
    expect(decoder.next()).toEqual({ kind: "error", reason: "payload too large", bytes: 33 });
    expect(decoder.next()).toBeNull();
    // The skipped body may hold anything, even a frame's text.
    const body = Buffer.from(`Content-Length: 2\r\n\r\n{}${"x".repeat(33 - 23)}`);
    expect(body.length).toBe(33);
    expect(decodeChunks(decoder, oneByteChunks(Buffer.concat([body, encodeContentLength("[]")])))).toEqual([
      message("[]"),
    ]);
    expect(decodeChunks(contentLength(), [encodeContentLength("x".repeat(32))])).toEqual([message("x".repeat(32))]);
  });

  it("resynchronises on a `Content-Length:` cut across reads", () => {
    const decoder = contentLength();
    const input = Buffer.concat([Buffer.from("garbage\r\n\r\njunk"), encodeContentLength("{}")]);
    const cut = input.indexOf("Length");
    expect(decodeChunks(decoder, [input.subarray(0, cut), input.subarray(cut)])).toEqual([
      problem("missing content length"),
      message("{}"),
    ]);
  });

  it("resynchronises after any unusable header: the next real frame is read", () => {
    const garbled = fc.constantFrom(
      "Content-Length: -1\r\n\r\n",
      "Content-Length: abc\n\n",
      "content-length: 1\r\n\r\n",
      "Content-Type: application/json\r\n\r\n",
      "Content-Length: 1\r\nContent-Length: x\r\n\r\n",
      `X-Padding: ${"a".repeat(80)}\r\n`,
      "\n\n",
    );
    const noHeaderText = bodies.filter((body) => !Buffer.from(body).includes("Content-Length:"));
    fc.assert(
      fc.property(garbled, noHeaderText, bodies, cuts, (header, junk, body, cutPoints) => {
        const input = Buffer.concat([Buffer.from(header), junk, encodeContentLength(body)]);
        const out = decodeChunks(contentLength({ maxHeaderBytes: 64, maxBodyBytes: 64 }), cutAt(input, cutPoints));
        expect(out.length).toBeGreaterThanOrEqual(2);
        expect(out.slice(0, -1).every((shown) => "error" in shown)).toBe(true);
        expect(out.at(-1)).toEqual(message(body));
      }),
    );
  });

  it("makes the same of any input however it is cut", () => {
    const piece = fc.oneof(
      bodies.map((body) => encodeContentLength(body)),
      fc
        .constantFrom(
          "Content-Length: ",
          "Content-Length: 3\r\n",
          "Content-Length: 40\r\n\r\n",
          "Content-Length: +2\n\n",
          "Content-Length: x\n\n",
          "content-length: 2\n\n",
          "X-Extra: 1\r\n",
          "\r\n",
          "\n",
          " ",
        )
        .map((text) => Buffer.from(text)),
      bodies.map((body) => Buffer.from(body)),
    );
    expectSameHoweverCut(piece, contentLength);
  });

  it("drops an incomplete frame at end of input", () => {
    expect(decodeChunks(contentLength(), [Buffer.from("Content-Length: 5\r\n\r\n{}")])).toEqual([]);
    expect(decodeChunks(contentLength(), [Buffer.from("Content-Length: 5")])).toEqual([]);
  });
});

describe("newline-delimited framing", () => {
  const nonBlankLine = fc
    .string({ unit: "binary", maxLength: 12 })
    .filter((text) => !text.includes("\n") && /[^ \t\r]/.test(text));

  it("writes one line per message", () => {
    expect(encodeLine('{"a":"é"}').toString("utf8")).toBe('{"a":"é"}\n');
  });

  it("reads back whatever it wrote, however the bytes are cut, several messages per chunk included", () => {
    fc.assert(
      fc.property(fc.array(nonBlankLine, { maxLength: 6 }), cuts, (messages, cutPoints) => {
        const input = Buffer.concat(messages.map((text) => encodeLine(text)));
        expect(decodeChunks(lines(1024), cutAt(input, cutPoints))).toEqual(messages.map(message));
      }),
    );
  });

  it("reads the same at every cut position, inside UTF-8 characters included, and byte by byte", () => {
    const input = Buffer.concat([encodeLine(UNICODE_BODY), encodeLine("😀")]);
    const expected = [message(UNICODE_BODY), message("😀")];
    for (const chunks of [...everyTwoWaySplit(input), oneByteChunks(input)]) {
      expect(decodeChunks(lines(128), chunks)).toEqual(expected);
    }
  });

  it("keeps a CR before the newline (JSON whitespace) and skips lines of only spaces, tabs and CRs", () => {
    expect(decodeChunks(lines(), [Buffer.from('{"a":1}\r\n\n \n\t\r\n[]\n')])).toEqual([
      message('{"a":1}\r'),
      message("[]"),
    ]);
  });

  it("refuses a line over the limit and reads the next one; a line of exactly the limit is taken", () => {
    const input = Buffer.from(`${"x".repeat(17)}\n${"y".repeat(16)}\n`);
    for (const chunks of [[input], oneByteChunks(input)]) {
      expect(decodeChunks(lines(16), chunks)).toEqual([problem("payload too large"), message("y".repeat(16))]);
    }
  });

  it("refuses a line as soon as it passes the limit, before its newline, and drops it up to the newline", () => {
    const decoder = lines(16);
    decoder.push(Buffer.from("x".repeat(16)));
    expect(decoder.next()).toBeNull();
    decoder.push(Buffer.from("x"));
    expect(decoder.next()).toEqual({ kind: "error", reason: "payload too large" });
    decoder.push(Buffer.from("x".repeat(40)));
    expect(decoder.next()).toBeNull();
    expect(decodeChunks(decoder, [Buffer.from("xx\nok\n")])).toEqual([message("ok")]);
  });

  it("at end of input, takes a last line without its newline unless it is blank or being dropped", () => {
    expect(decodeChunks(lines(), [Buffer.from("a\nb")])).toEqual([message("a"), message("b")]);
    expect(decodeChunks(lines(), [Buffer.from("a\n \r\t")])).toEqual([message("a")]);
    expect(decodeChunks(lines(4), [Buffer.from("a\nxxxxx")])).toEqual([message("a"), problem("payload too large")]);
  });

  it("makes the same of any input however it is cut", () => {
    const piece = fc.oneof(
      nonBlankLine.map((text) => Buffer.from(text)),
      fc.constantFrom("\n", "\r\n", " ", "\t", "x".repeat(20)).map((text) => Buffer.from(text)),
      bodies.map((body) => Buffer.from(body)),
    );
    expectSameHoweverCut(piece, () => lines());
  });
});

describe("decodeStream", () => {
  it("yields every message of a stream, then what its end completes", async () => {
    async function* chunks() {
      yield Buffer.from('{"a":');
      yield Buffer.from('1}\n{"b"');
      yield Buffer.from(":2}");
    }
    const out: Shown[] = [];
    for await (const decoded of decodeStream(chunks(), lines())) out.push(show(decoded));
    expect(out).toEqual([message('{"a":1}'), message('{"b":2}')]);
  });
});
