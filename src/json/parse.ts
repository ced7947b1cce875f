import { JsonParseError } from "./errors.js";
import { I64_MIN, type JsonObject, type JsonValue, setOwn, U64_MAX } from "./value.js";

/** Nesting deeper than this is refused, as serde_json does by default. */
export const MAX_JSON_DEPTH = 128;

const NUMBER_PATTERN = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;
const ESCAPES: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };

/**
 * Parses JSON text without losing information: integer literals within i64/u64 become exact `bigint`s,
 * everything else numeric becomes a float `number` (see value.ts). Rejects what serde_json rejects: trailing
 * content, nesting deeper than 128, numbers that overflow f64, and unpaired surrogate escapes.
 */
export function parseJson(text: string): JsonValue {
  const parser = new Parser(text);
  parser.skipWhitespace();
  const value = parser.parseValue(0);
  parser.skipWhitespace();
  if (parser.pos < text.length) parser.fail("trailing characters");
  return value;
}

/** Parses UTF-8 bytes; a leading byte-order mark is rejected, as serde_json does. */
export function parseJsonBytes(bytes: Uint8Array): JsonValue {
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    throw new JsonParseError("invalid JSON: input is not valid UTF-8");
  }
  return parseJson(text);
}

const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

class Parser {
  pos = 0;
  constructor(private readonly text: string) {}

  fail(reason: string): never {
    const before = this.text.slice(0, this.pos);
    const line = before.split("\n").length;
    const column = this.pos - before.lastIndexOf("\n");
    throw new JsonParseError(`invalid JSON at line ${line} column ${column}: ${reason}`);
  }

  skipWhitespace(): void {
    const text = this.text;
    let pos = this.pos;
    for (;;) {
      const code = text.charCodeAt(pos);
      if (code !== 0x20 && code !== 0x0a && code !== 0x0d && code !== 0x09) break;
      pos++;
    }
    this.pos = pos;
  }

  parseValue(depth: number): JsonValue {
    const char = this.text[this.pos];
    switch (char) {
      case "{":
        return this.parseObject(depth + 1);
      case "[":
        return this.parseArray(depth + 1);
      case '"':
        return this.parseString();
      case "t":
        return this.parseLiteral("true", true);
      case "f":
        return this.parseLiteral("false", false);
      case "n":
        return this.parseLiteral("null", null);
      case undefined:
        return this.fail("unexpected end of input");
      default:
        if (char === "-" || (char >= "0" && char <= "9")) return this.parseNumber();
        return this.fail(`unexpected character ${JSON.stringify(char)}`);
    }
  }

  private enter(depth: number): void {
    if (depth > MAX_JSON_DEPTH) this.fail(`nesting deeper than ${MAX_JSON_DEPTH} levels`);
    this.pos++;
    this.skipWhitespace();
  }

  private parseObject(depth: number): JsonObject {
    this.enter(depth);
    const result: JsonObject = {};
    if (this.text[this.pos] === "}") {
      this.pos++;
      return result;
    }
    for (;;) {
      if (this.text[this.pos] !== '"') this.fail("expected an object key");
      const key = this.parseString();
      this.skipWhitespace();
      if (this.text[this.pos] !== ":") this.fail("expected ':' after an object key");
      this.pos++;
      this.skipWhitespace();
      setOwn(result, key, this.parseValue(depth));
      if (this.endOfContainer("}")) return result;
    }
  }

  private parseArray(depth: number): JsonValue[] {
    this.enter(depth);
    const result: JsonValue[] = [];
    if (this.text[this.pos] === "]") {
      this.pos++;
      return result;
    }
    for (;;) {
      result.push(this.parseValue(depth));
      if (this.endOfContainer("]")) return result;
    }
  }

  /** After a member: consumes `,` (returns false) or the closing bracket (returns true). */
  private endOfContainer(close: string): boolean {
    this.skipWhitespace();
    const char = this.text[this.pos];
    this.pos++;
    if (char === close) return true;
    if (char !== ",") {
      this.pos--;
      this.fail(`expected ',' or '${close}'`);
    }
    this.skipWhitespace();
    return false;
  }

  private parseLiteral<T extends JsonValue>(word: string, value: T): T {
    if (!this.text.startsWith(word, this.pos)) this.fail("invalid literal");
    this.pos += word.length;
    return value;
  }

  private parseNumber(): bigint | number {
    NUMBER_PATTERN.lastIndex = this.pos;
    const match = NUMBER_PATTERN.exec(this.text);
    if (match === null) return this.fail("invalid number");
    const literal = match[0];
    this.pos += literal.length;
    if (match[1] === undefined && match[2] === undefined && literal !== "-0") {
      const integer = BigInt(literal);
      if (integer >= I64_MIN && integer <= U64_MAX) return integer;
    }
    const float = Number(literal);
    if (!Number.isFinite(float)) {
      this.pos -= literal.length;
      this.fail("number out of range");
    }
    return float;
  }

  private parseString(): string {
    const text = this.text;
    const start = ++this.pos;
    let pos = start;
    for (;;) {
      const code = text.charCodeAt(pos);
      if (code === 0x22) break;
      if (code === 0x5c || code < 0x20 || Number.isNaN(code)) return this.parseEscapedString(start);
      pos++;
    }
    this.pos = pos + 1;
    return text.slice(start, pos);
  }

  private parseEscapedString(start: number): string {
    const text = this.text;
    let out = "";
    this.pos = start;
    for (;;) {
      const char = text[this.pos];
      if (char === undefined) this.fail("unterminated string");
      if (char === '"') break;
      if (char.charCodeAt(0) < 0x20) this.fail("control character in string");
      if (char === "\\") {
        out += this.parseEscape();
      } else {
        out += char;
        this.pos++;
      }
    }
    this.pos++;
    return out;
  }

  private parseEscape(): string {
    const kind = this.text[this.pos + 1];
    this.pos += 2;
    if (kind !== undefined && kind in ESCAPES) return ESCAPES[kind] as string;
    if (kind !== "u") {
      this.pos -= 2;
      this.fail("invalid escape");
    }
    const unit = this.readHex4();
    if (unit >= 0xdc00 && unit <= 0xdfff) this.fail("unpaired surrogate in string escape");
    if (unit < 0xd800 || unit > 0xdbff) return String.fromCharCode(unit);
    if (this.text[this.pos] !== "\\" || this.text[this.pos + 1] !== "u")
      this.fail("unpaired surrogate in string escape");
    this.pos += 2;
    const low = this.readHex4();
    if (low < 0xdc00 || low > 0xdfff) this.fail("unpaired surrogate in string escape");
    return String.fromCharCode(unit, low);
  }

  private readHex4(): number {
    const hex = this.text.slice(this.pos, this.pos + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail("invalid unicode escape");
    this.pos += 4;
    return Number.parseInt(hex, 16);
  }
}
