import type { FastifyInstance } from "fastify";
import type { OAuthResourceServer } from "./resource-server.js";

/**
 * `GET /.well-known/oauth-protected-resource` (and its `/mcp` form, RFC 9728 §3.1): unauthenticated, since clients
 * read it to learn where to get a token.
 */
export function serveResourceMetadata(app: FastifyInstance, server: OAuthResourceServer): void {
  const body = server.metadata();
  for (const path of server.metadataPaths) {
    app.get(path, async (_request, reply) => reply.header("cache-control", "max-age=3600").send(body));
  }
}
