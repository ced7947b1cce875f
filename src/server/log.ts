import pino, { type Logger } from "pino";
import pretty from "pino-pretty";
import { ConfigError } from "../config/load.js";
import { type DecisionGateConfig, LOG_LEVELS } from "../config/schema.js";

/*
 * The operational log: what an operator needs to run the server (internal errors with their stack, per-request
 * lines at `debug`). It is separate from the audit log, whose line format is a wire contract. Lines never carry
 * tool arguments, evidence values or credentials.
 */

type LogSettings = DecisionGateConfig["server"]["log"];
type LogLevel = LogSettings["level"];

export const LOG_LEVEL_ENV = "DECISION_GATE_LOG_LEVEL";

/** `$DECISION_GATE_LOG_LEVEL` overrides the configured level; an unknown value is a configuration error. */
export function effectiveLogLevel(configured: LogLevel, env: NodeJS.ProcessEnv): LogLevel {
  const fromEnv = env[LOG_LEVEL_ENV]?.trim().toLowerCase();
  if (fromEnv === undefined || fromEnv === "") return configured;
  if (!(LOG_LEVELS as readonly string[]).includes(fromEnv)) {
    throw new ConfigError(
      "config_invalid",
      `invalid config: ${LOG_LEVEL_ENV}: expected one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(fromEnv)}`,
    );
  }
  return fromEnv as LogLevel;
}

/** JSON lines on standard error; human-readable lines when `pretty`, or `auto` and standard error is a terminal. */
export function createServerLogger(settings: LogSettings, stream: NodeJS.WritableStream = process.stderr): Logger {
  const base = { level: settings.level, base: { service: "decision-gate" } };
  if (usePretty(settings.format, stream)) {
    return pino(base, pretty({ destination: stream, sync: true, colorize: isTerminal(stream) }));
  }
  return pino(base, stream === process.stderr ? pino.destination({ dest: 2, sync: true }) : stream);
}

function usePretty(format: LogSettings["format"], stream: NodeJS.WritableStream): boolean {
  return format === "pretty" || (format === "auto" && isTerminal(stream));
}

function isTerminal(stream: NodeJS.WritableStream): boolean {
  return (stream as { isTTY?: boolean }).isTTY === true;
}
