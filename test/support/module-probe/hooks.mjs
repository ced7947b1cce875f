import { appendFileSync } from "node:fs";

let probe = { file: undefined, pattern: undefined };

export function initialize(data) {
  probe = data;
}

export async function resolve(specifier, context, next) {
  if (probe.file !== undefined && probe.pattern !== undefined && specifier.includes(probe.pattern)) {
    appendFileSync(probe.file, `${specifier}\n`);
  }
  return next(specifier, context);
}
