import type { TelemetryConfig } from "../../config/schema.js";
import type { Tracing } from "./tracing.js";

/** The tracing `[telemetry]` asks for, or null (nothing loaded) when no endpoint is configured. */
export async function loadTracing(config: TelemetryConfig): Promise<Tracing | null> {
  if (config.otlp_endpoint === undefined) return null;
  const { createOtelTracing } = await import("./otel.js");
  return createOtelTracing({ ...config, otlp_endpoint: config.otlp_endpoint });
}
