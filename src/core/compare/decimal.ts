/*
 * Exact decimal comparison of JSON numbers (engine §3.3). The reference renders each number with
 * `Number::to_string()` and parses the text as a `BigDecimal`: integers stay exact, floats contribute their
 * shortest round-trip decimal (the same digits as JS `String(x)`), and scale is ignored.
 */

export type JsonNumber = bigint | number;
export type Ordering = -1 | 0 | 1;

/** The value `coefficient × 10^exponent`. */
interface Decimal {
  coefficient: bigint;
  exponent: number;
}

const DECIMAL_TEXT = /^(-?)([0-9]+)(?:\.([0-9]+))?(?:e([+-]?[0-9]+))?$/;

/** The decimal value of a JSON number, or `undefined` for NaN and infinities (which JSON cannot hold). */
export function toDecimal(value: JsonNumber): Decimal | undefined {
  if (typeof value === "bigint") return { coefficient: value, exponent: 0 };
  const match = DECIMAL_TEXT.exec(String(value));
  if (match === null) return undefined;
  const [, sign = "", whole = "", fraction = "", exponent = "0"] = match;
  const magnitude = BigInt(whole + fraction);
  return { coefficient: sign === "-" ? -magnitude : magnitude, exponent: Number(exponent) - fraction.length };
}

/** Orders two JSON numbers by exact decimal value; `undefined` when either is not finite. */
export function compareDecimal(a: JsonNumber, b: JsonNumber): Ordering | undefined {
  const left = toDecimal(a);
  const right = toDecimal(b);
  if (left === undefined || right === undefined) return undefined;
  const exponent = Math.min(left.exponent, right.exponent);
  const x = left.coefficient * 10n ** BigInt(left.exponent - exponent);
  const y = right.coefficient * 10n ** BigInt(right.exponent - exponent);
  return x < y ? -1 : x > y ? 1 : 0;
}
