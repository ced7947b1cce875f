import { RE2JS } from "re2js";
import { iRegexpToRe2 } from "./iregexp.js";
import { JsonPathLimitExceeded } from "./jsonpath-budget.js";

/*
 * The regular expressions of JSONPath `match()` and `search()`, run by RE2 (re2js): time linear in the input for
 * any pattern, so a pattern such as `(a|a)*` cannot stall the event loop the way a backtracking RegExp does.
 * Linear is not free: RE2 may fall back to simulating its whole compiled program on every character, so each
 * evaluation of one JSONPath expression gets a bounded amount of regex work.
 */

/**
 * Longest pattern, in UTF-16 code units. Real patterns are short; the bound keeps compiling cheap (RE2 compiles
 * in time proportional to the pattern, up to tens of milliseconds for the largest programs).
 */
export const MAX_REGEX_PATTERN_LENGTH = 1000;

/**
 * Longest string matched, in UTF-16 code units: enough for names, versions, URLs and messages, and short enough
 * that one match with the largest program RE2 accepts (about 1,300 instructions) stays near the budget below.
 */
export const MAX_REGEX_INPUT_LENGTH = 16_384;

/**
 * Regex work one JSONPath evaluation may do, in steps: compiling costs `COMPILE_STEPS_PER_INSTRUCTION` per
 * instruction of the compiled program, matching a string costs the instruction count times (length + 1), which
 * is what RE2's slowest path (simulating the whole program on every character) does. That path took 25–100 ns
 * per step in re2js on a shared, busy machine, so 20 million steps take a second or two at worst; the DFA
 * usually runs far faster. A date pattern such as `[0-9]{4}-[0-9]{2}-[0-9]{2}` (12 instructions) may scan every
 * string of a 1 MiB document.
 */
export const MAX_REGEX_STEPS = 20_000_000;
const COMPILE_STEPS_PER_INSTRUCTION = 1000;

interface CompiledRegex {
  regex: RE2JS;
  programSize: number;
}

/** The RFC 9535 functions that take a regex, as `jsonpath-rfc9535` declares function extensions. */
export interface RegexFunctions {
  match: RegexFunctionDeclaration;
  search: RegexFunctionDeclaration;
}

interface RegexFunctionDeclaration {
  declaration: (context: unknown, value: unknown, pattern: unknown) => boolean;
  definition: { parameters: ["ValueType", "ValueType"]; returnType: "LogicalType" };
}

/** Fresh `match()`/`search()` for one evaluation: they share a cache of compiled patterns and one work budget. */
export function regexFunctions(): RegexFunctions {
  const evaluation = new RegexEvaluation();
  const declare = (whole: boolean): RegexFunctionDeclaration => ({
    declaration: (_context, value, pattern) => evaluation.test(value, pattern, whole),
    definition: { parameters: ["ValueType", "ValueType"], returnType: "LogicalType" },
  });
  return { match: declare(true), search: declare(false) };
}

class RegexEvaluation {
  private readonly compiled = new Map<string, CompiledRegex | undefined>();
  private stepsLeft = MAX_REGEX_STEPS;

  /** `match()` (`whole`: the entire string) or `search()` (any substring); false unless both are strings. */
  test(value: unknown, pattern: unknown, whole: boolean): boolean {
    if (typeof value !== "string" || typeof pattern !== "string") return false;
    const compiled = this.compile(pattern);
    if (compiled === undefined) return false;
    if (value.length > MAX_REGEX_INPUT_LENGTH) {
      throw new JsonPathLimitExceeded(`jsonpath regex input exceeds ${MAX_REGEX_INPUT_LENGTH} characters`);
    }
    this.charge(compiled.programSize * (value.length + 1));
    return whole ? compiled.regex.testExact(value) : compiled.regex.test(value);
  }

  /** The compiled pattern, or `undefined` when it is not an I-Regexp (cached either way). */
  private compile(pattern: string): CompiledRegex | undefined {
    if (this.compiled.has(pattern)) return this.compiled.get(pattern);
    if (pattern.length > MAX_REGEX_PATTERN_LENGTH) {
      throw new JsonPathLimitExceeded(`jsonpath regex pattern exceeds ${MAX_REGEX_PATTERN_LENGTH} characters`);
    }
    const translation = iRegexpToRe2(pattern);
    if (translation.kind === "invalid") {
      this.compiled.set(pattern, undefined);
      return undefined;
    }
    const unsupported = new JsonPathLimitExceeded("jsonpath regex pattern exceeds the regex engine's limits");
    if (translation.kind === "unsupported") throw unsupported;
    this.charge(translation.programSize * COMPILE_STEPS_PER_INSTRUCTION);
    let regex: RE2JS;
    try {
      regex = RE2JS.compile(translation.source);
    } catch {
      throw unsupported; // nested repetitions beyond RE2's limits; every I-Regexp construct itself is supported
    }
    const compiled = { regex, programSize: translation.programSize };
    this.compiled.set(pattern, compiled);
    return compiled;
  }

  private charge(steps: number): void {
    this.stepsLeft -= steps;
    if (this.stepsLeft < 0) {
      throw new JsonPathLimitExceeded(`jsonpath regex work exceeds ${MAX_REGEX_STEPS} steps in one evaluation`);
    }
  }
}
