import type { DecisionGateConfig } from "../config/schema.js";
import { DecisionGateError } from "../core/errors.js";
import { isLoopbackBind } from "../net/address.js";

/** The server refused to start with this configuration. */
export class ServePolicyError extends DecisionGateError {
  constructor(message: string) {
    super("invalid_params", "serve_policy", message);
  }
}

/**
 * D8: binding HTTP/SSE beyond loopback needs an explicit opt-in, non-local authentication, and TLS in-process or
 * at an upstream proxy (interface §4.8). Enforced here, by the server, whoever starts it.
 */
export function checkBindPolicy(config: DecisionGateConfig, allowNonLoopback: boolean): void {
  const { server } = config;
  if (server.transport === "stdio") return;
  const metricsBind = server.metrics.bind;
  if (metricsBind !== undefined && !isLoopbackBind(metricsBind) && !allowNonLoopback) {
    throw new ServePolicyError(
      `Refusing to bind metrics to non-loopback address ${metricsBind}. Set --allow-non-loopback or DECISION_GATE_ALLOW_NON_LOOPBACK=1 to opt in.`,
    );
  }
  if (server.bind === undefined || isLoopbackBind(server.bind)) return;
  const bind = server.bind;
  if (!allowNonLoopback) {
    throw new ServePolicyError(
      `Refusing to bind to non-loopback address ${bind}. Set --allow-non-loopback or DECISION_GATE_ALLOW_NON_LOOPBACK=1 to opt in.`,
    );
  }
  if (server.auth.mode === "local_only") {
    throw new ServePolicyError(
      `Refusing to bind to ${bind}: server.auth.mode must be bearer_token or mtls for non-loopback.`,
    );
  }
  if (server.tls === undefined && server.tls_termination !== "upstream") {
    throw new ServePolicyError(
      `Refusing to bind to ${bind}: configure server.tls or set server.tls_termination=upstream.`,
    );
  }
  if (server.auth.mode === "mtls" && server.tls !== undefined) {
    if ((server.tls.client_ca_path ?? "").trim().length === 0) {
      throw new ServePolicyError(`Refusing to bind to ${bind}: mTLS requires tls.client_ca_path.`);
    }
    if (!server.tls.require_client_cert) {
      throw new ServePolicyError(`Refusing to bind to ${bind}: mTLS requires tls.require_client_cert=true.`);
    }
  }
}

const TRUTHY = ["1", "true", "yes", "y", "on"];
const FALSY = ["0", "false", "no", "n", "off"];

/** `DECISION_GATE_ALLOW_NON_LOOPBACK`: unset is false; anything but a recognised truth value is an error. */
export function allowNonLoopbackFromEnv(value: string | undefined): boolean {
  if (value === undefined) return false;
  const normalized = value.trim().toLowerCase();
  if (TRUTHY.includes(normalized)) return true;
  if (FALSY.includes(normalized)) return false;
  throw new ServePolicyError(
    `Invalid value for DECISION_GATE_ALLOW_NON_LOOPBACK: ${value}. Expected true/false/1/0/yes/no/on/off.`,
  );
}
