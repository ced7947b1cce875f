// Loaded with `--import` in a child process: records every module specifier the child resolves that names
// `OTEL_PROBE_PATTERN`, one per line in `OTEL_PROBE_FILE`, so a test can tell which packages were loaded.
import { register } from "node:module";

register("./hooks.mjs", import.meta.url, {
  data: { file: process.env.OTEL_PROBE_FILE, pattern: process.env.OTEL_PROBE_PATTERN },
});
