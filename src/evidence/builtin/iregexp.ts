/**
 * I-Regexp (RFC 9485), the pattern language of the JSONPath functions `match()` and `search()` (RFC 9535
 * §2.4.6–7), rewritten into RE2 syntax so that a linear-time engine can run it.
 *
 * The grammar is RFC 9485 §3 exactly; anything outside it (`\d`, `\w`, `(?:`, lazy quantifiers, back-references,
 * look-arounds, an empty class `[]`, lone surrogates, a range `[b-a]`) is not an I-Regexp. Two choices follow
 * RFC 9485 §5, as the JSONPath compliance test suite and ECMAScript-based implementations do:
 * - `.` outside a class matches any character except `\n` and `\r`;
 * - `^` and `$` outside a class are anchors (beginning and end of the string) and cannot be quantified.
 * Every other literal is written as `\x{hex}` (ASCII letters and digits as themselves), so no RE2 syntax can be
 * smuggled through. Groups become non-capturing.
 */

export type Re2Translation =
  | { kind: "re2"; source: string; programSize: number }
  /** Not an I-Regexp: `match()`/`search()` are false (RFC 9535). */
  | { kind: "invalid" }
  /** A valid I-Regexp RE2 does not run: a repetition count above 1000. */
  | { kind: "unsupported" };

/** RE2's largest repetition count (`x{1000}`); a larger one is a valid I-Regexp RE2 refuses. */
const MAX_REPETITION = 1000;

export function iRegexpToRe2(pattern: string): Re2Translation {
  try {
    const { source, size } = new IRegexpParser(pattern).parse();
    return { kind: "re2", source, programSize: size + 2 };
  } catch (error) {
    if (error instanceof NotIRegexp) return { kind: "invalid" };
    if (error instanceof RepetitionTooLarge) return { kind: "unsupported" };
    throw error;
  }
}

class NotIRegexp extends Error {}
class RepetitionTooLarge extends Error {}

/** A piece of the translated pattern and an upper bound on the RE2 instructions it compiles to. */
interface Fragment {
  source: string;
  size: number;
}

/** The categories of RFC 9485 `IsCategory`: a letter, optionally followed by one of the listed second letters. */
const CATEGORIES: Record<string, string> = {
  L: "lmotu",
  M: "cen",
  N: "dlo",
  P: "cdefios",
  Z: "lps",
  S: "ckmo",
  C: "cfno",
};

/** `SingleCharEsc`: `\` followed by one of these stands for the character itself, or for \n, \r, \t. */
const SINGLE_CHARACTER_ESCAPES = new Set("()*+-.?[\\]^{|}nrt");
const CONTROL_ESCAPES: Record<string, number> = { n: 0x0a, r: 0x0d, t: 0x09 };

/** Outside classes, these are syntax; every other character except surrogates is a `NormalChar`. */
const SYNTAX_CHARACTERS = new Set("()*+.?[\\]{|}");
/** Inside classes, these are syntax (or, for `-`, only allowed first and last). */
const CLASS_SYNTAX_CHARACTERS = new Set("-[\\]");

const ANCHORS: Record<string, string> = { "^": "^", $: "$" };

class IRegexpParser {
  private readonly characters: string[];
  private index = 0;

  constructor(pattern: string) {
    this.characters = Array.from(pattern);
  }

  parse(): Fragment {
    const fragment = this.alternation();
    if (this.peek() !== undefined) throw new NotIRegexp(); // an unbalanced `)`
    return fragment;
  }

  /** `i-regexp = branch *( "|" branch )` */
  private alternation(): Fragment {
    const branches = [this.branch()];
    while (this.peek() === "|") {
      this.index++;
      branches.push(this.branch());
    }
    return {
      source: branches.map((branch) => branch.source).join("|"),
      size: branches.reduce((total, branch) => total + branch.size, branches.length - 1),
    };
  }

  /** `branch = *piece` */
  private branch(): Fragment {
    let source = "";
    let size = 0;
    for (let next = this.peek(); next !== undefined && next !== "|" && next !== ")"; next = this.peek()) {
      const piece = this.piece();
      source += piece.source;
      size += piece.size;
    }
    return { source, size: Math.max(size, 1) };
  }

  /** `piece = atom [ quantifier ]` */
  private piece(): Fragment {
    const anchor = ANCHORS[this.peek() ?? ""];
    if (anchor !== undefined) {
      this.index++;
      if (this.atQuantifier()) throw new NotIRegexp();
      return { source: anchor, size: 1 };
    }
    const atom = this.atom();
    return this.atQuantifier() ? this.quantified(atom) : atom;
  }

  private atQuantifier(): boolean {
    const next = this.peek();
    return next === "*" || next === "+" || next === "?" || next === "{";
  }

  private quantified(atom: Fragment): Fragment {
    const quantifier = this.take();
    if (quantifier !== "{") return { source: `${atom.source}${quantifier}`, size: atom.size + 1 };
    const least = this.count();
    let most: number | undefined = least;
    if (this.peek() === ",") {
      this.index++;
      most = this.peek() === "}" ? undefined : this.count();
    }
    this.expect("}");
    if (most !== undefined && most < least) throw new NotIRegexp();
    if (Math.max(least, most ?? 0) > MAX_REPETITION) throw new RepetitionTooLarge();
    const bounds = most === least ? `${least}` : `${least},${most ?? ""}`;
    // RE2 compiles x{n,m} to n copies of x and m-n optional ones (each with a split), x{n,} to n copies and x*.
    const optional = most === undefined ? atom.size + 1 : (most - least) * (atom.size + 1);
    return { source: `${atom.source}{${bounds}}`, size: Math.max(least * atom.size + optional, 1) };
  }

  /** `QuantExact = 1*%x30-39`, as a number (leading zeros allowed). */
  private count(): number {
    let digits = "";
    for (let next = this.peek(); next !== undefined && next >= "0" && next <= "9"; next = this.peek()) {
      digits += this.take();
    }
    if (digits === "") throw new NotIRegexp();
    return Number(digits);
  }

  /** `atom = NormalChar / charClass / ( "(" i-regexp ")" )` */
  private atom(): Fragment {
    const character = this.take();
    switch (character) {
      case "(": {
        const inner = this.alternation();
        this.expect(")");
        return { source: `(?:${inner.source})`, size: inner.size };
      }
      case ".":
        return { source: "[^\\n\\r]", size: 1 };
      case "[":
        return { source: this.classExpression(), size: 1 };
      case "\\":
        return { source: this.escapeOutsideClass(), size: 1 };
      default:
        if (SYNTAX_CHARACTERS.has(character) || isSurrogate(character)) throw new NotIRegexp();
        return { source: literal(character), size: 1 };
    }
  }

  /** After `\`: `SingleCharEsc / catEsc / complEsc`. */
  private escapeOutsideClass(): string {
    const next = this.peek();
    if (next === "p" || next === "P") return this.category();
    return literal(this.singleCharacterEscape());
  }

  /** After `\`: one of `SingleCharEsc`, as the character it stands for. */
  private singleCharacterEscape(): string {
    const character = this.take();
    if (!SINGLE_CHARACTER_ESCAPES.has(character)) throw new NotIRegexp();
    const control = CONTROL_ESCAPES[character];
    return control === undefined ? character : String.fromCharCode(control);
  }

  /** After `\`: `p{…}` or `P{…}` with an RFC 9485 general category; RE2 spells these the same way. */
  private category(): string {
    const letter = this.take();
    this.expect("{");
    const major = this.take();
    const minors = CATEGORIES[major];
    if (minors === undefined) throw new NotIRegexp();
    let name = major;
    if (this.peek() !== "}") {
      const minor = this.take();
      if (!minors.includes(minor)) throw new NotIRegexp();
      name += minor;
    }
    this.expect("}");
    return `\\${letter}{${name}}`;
  }

  /** After `[`: `[ "^" ] ( "-" / CCE1 ) *CCE1 [ "-" ] "]"`. */
  private classExpression(): string {
    let source = "[";
    if (this.peek() === "^") {
      this.index++;
      source += "^";
    }
    if (this.peek() === "-") {
      this.index++;
      source += literal("-");
    } else {
      source += this.classEntry();
    }
    for (let next = this.peek(); next !== "]" && next !== "-"; next = this.peek()) source += this.classEntry();
    if (this.peek() === "-") {
      this.index++;
      source += literal("-");
    }
    this.expect("]");
    return `${source}]`;
  }

  /** `CCE1 = ( CCchar [ "-" CCchar ] ) / charClassEsc` */
  private classEntry(): string {
    if (this.peek() === "\\" && (this.peek(1) === "p" || this.peek(1) === "P")) {
      this.index++;
      return this.category();
    }
    const low = this.classCharacter();
    if (this.peek() !== "-" || this.peek(1) === "]") return literal(low);
    this.index++;
    const high = this.classCharacter();
    if (codePoint(high) < codePoint(low)) throw new NotIRegexp();
    return `${literal(low)}-${literal(high)}`;
  }

  /** `CCchar`: any character but `-`, `[`, `\`, `]` and surrogates, or a `SingleCharEsc`. */
  private classCharacter(): string {
    const character = this.take();
    if (character === "\\") return this.singleCharacterEscape();
    if (CLASS_SYNTAX_CHARACTERS.has(character) || isSurrogate(character)) throw new NotIRegexp();
    return character;
  }

  private peek(ahead = 0): string | undefined {
    return this.characters[this.index + ahead];
  }

  private take(): string {
    const character = this.characters[this.index++];
    if (character === undefined) throw new NotIRegexp();
    return character;
  }

  private expect(character: string): void {
    if (this.take() !== character) throw new NotIRegexp();
  }
}

const ASCII_ALPHANUMERIC = /^[A-Za-z0-9]$/;

/** One character as an RE2 literal, valid inside and outside classes. */
function literal(character: string): string {
  return ASCII_ALPHANUMERIC.test(character) ? character : `\\x{${codePoint(character).toString(16)}}`;
}

function codePoint(character: string): number {
  return character.codePointAt(0) ?? 0;
}

/** `Array.from` leaves an unpaired surrogate as a one-unit string; I-Regexp excludes surrogate code points. */
function isSurrogate(character: string): boolean {
  const code = codePoint(character);
  return code >= 0xd800 && code <= 0xdfff;
}
