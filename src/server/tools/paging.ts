import { z } from "zod";
import { InvalidInputError } from "../../core/errors.js";
import { nullable } from "../../core/wire/common.js";

export const DEFAULT_PAGE_LIMIT = 50;
const MAX_PAGE_LIMIT = 1000;

/** `cursor` and `limit` of the list tools. */
export const pageArgs = { cursor: nullable(z.string()), limit: nullable(z.bigint()) };
export interface PageArgs {
  cursor: string | null;
  limit: bigint | null;
}

/** The page size: 50 by default, 1..=1000 allowed (`limit must be between 1 and 1000`). */
export function pageLimit(args: PageArgs): number {
  if (args.limit === null) return DEFAULT_PAGE_LIMIT;
  if (args.limit < 1n || args.limit > BigInt(MAX_PAGE_LIMIT)) {
    throw new InvalidInputError("limit must be between 1 and 1000");
  }
  return Number(args.limit);
}
