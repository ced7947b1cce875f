import { parseJson } from "../../src/json/parse.js";
import type { JsonObject, JsonValue } from "../../src/json/value.js";
import { compactJson } from "../../src/json/write.js";
import type { ServerProcess } from "./server-process.js";

/** A `tools/call` over `/rpc`; resolves to the tool output, or rejects with the JSON-RPC error (code, message, data). */
export async function callTool(server: ServerProcess, name: string, args: JsonValue): Promise<JsonObject> {
  const response = await fetch(`${server.url}/rpc`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: compactJson({ jsonrpc: "2.0", id: 1n, method: "tools/call", params: { name, arguments: args } }),
  });
  const body = parseJson(await response.text()) as JsonObject;
  if (body.error !== undefined)
    throw Object.assign(new Error((body.error as JsonObject).message as string), body.error);
  return ((body.result as JsonObject).content as Array<{ json: JsonObject }>)[0]?.json as JsonObject;
}
