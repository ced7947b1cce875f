import type { Ordering } from "./decimal.js";

/*
 * Date and time strings for the ordering comparators (engine §3.4). Date-times follow the `time` crate's
 * `Rfc3339` parser; date-only values follow the reference's own lenient `Y-M-D` parser.
 */

const NANOS_PER_SECOND = 1_000_000_000n;
const SECONDS_PER_DAY = 86_400n;
const LEAP_SECOND_NANOS = 999_999_999;

/* Every field has a fixed width, so one pattern suffices; the separator at index 10 is checked separately. */
const DATE_TIME =
  /^([0-9]{4})-([0-9]{2})-([0-9]{2})[\s\S]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))$/;

/** Rust's integer `parse`: an optional `+`, then ASCII digits (leading zeros allowed). */
const RUST_UNSIGNED = /^\+?[0-9]+$/;

/**
 * Parses an RFC 3339 date-time as the reference does and returns its UTC instant in nanoseconds since the Unix
 * epoch, or `undefined` when the text is not accepted.
 */
export function parseDateTime(text: string): bigint | undefined {
  const match = DATE_TIME.exec(text);
  // The separator may be any single byte, i.e. one code unit below U+0080 (not a multi-byte UTF-8 character).
  if (match === null || text.charCodeAt(10) >= 0x80) return undefined;
  const [year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0] = match.slice(1, 7).map(Number);
  const [fraction = "", sign = "+", offsetHour = "00", offsetMinute = "00"] = match.slice(7);
  if (!isCalendarDate(year, month, day) || hour > 23 || minute > 59 || second > 60) return undefined;
  if (Number(offsetHour) > 23 || Number(offsetMinute) > 59) return undefined;

  const leapSecond = second === 60;
  // Digits after the ninth are ignored; a leap second becomes the last nanosecond of the preceding second.
  const nanos = leapSecond ? LEAP_SECOND_NANOS : Number(fraction.slice(0, 9).padEnd(9, "0"));
  const offsetSeconds = (sign === "-" ? -1 : 1) * (Number(offsetHour) * 3600 + Number(offsetMinute) * 60);
  const secondOfDay = hour * 3600 + minute * 60 + (leapSecond ? 59 : second);
  const utcSeconds = BigInt(daysFromCivil(year, month, day)) * SECONDS_PER_DAY + BigInt(secondOfDay - offsetSeconds);
  if (leapSecond && !isLastSecondOfMonth(utcSeconds)) return undefined;
  return utcSeconds * NANOS_PER_SECOND + BigInt(nanos);
}

/**
 * Parses a date-only value with the reference's lenient parser (split on `-` into exactly three Rust-parsed
 * integers, then calendar validation) and returns its day number since the Unix epoch.
 */
export function parseDateOnly(text: string): number | undefined {
  const parts = text.split("-");
  if (parts.length !== 3 || !parts.every((part) => RUST_UNSIGNED.test(part))) return undefined;
  const [year, month, day] = parts.map(Number) as [number, number, number];
  return isCalendarDate(year, month, day) ? daysFromCivil(year, month, day) : undefined;
}

/**
 * Orders two strings as dates: both as date-times if both parse, otherwise both as date-only values.
 * `undefined` when neither applies (including one date-time against one date).
 */
export function compareTemporal(a: string, b: string): Ordering | undefined {
  const left = parseDateTime(a);
  const right = parseDateTime(b);
  if (left !== undefined && right !== undefined) return order(left, right);
  const leftDate = parseDateOnly(a);
  const rightDate = parseDateOnly(b);
  if (leftDate === undefined || rightDate === undefined) return undefined;
  return order(leftDate, rightDate);
}

function order<T extends bigint | number>(a: T, b: T): Ordering {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** `time::Date::from_calendar_date`: year within ±9999, month 1–12, day within the month. */
function isCalendarDate(year: number, month: number, day: number): boolean {
  return Math.abs(year) <= 9999 && month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth(year, month);
}

function isLeapYear(year: number): boolean {
  return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return isLeapYear(year) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** Leap seconds stand in only for 23:59:59 UTC on the last day of a month. */
function isLastSecondOfMonth(utcSeconds: bigint): boolean {
  const next = utcSeconds + 1n;
  if (next % SECONDS_PER_DAY !== 0n) return false;
  return civilFromDays(Number(next / SECONDS_PER_DAY)).day === 1;
}

/* Proleptic Gregorian day numbers (Howard Hinnant's `days_from_civil` / `civil_from_days`). */

function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

function civilFromDays(days: number): { year: number; month: number; day: number } {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor(
    (dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365,
  );
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const shiftedMonth = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * shiftedMonth + 2) / 5) + 1;
  const month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9;
  return { year: yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day };
}
