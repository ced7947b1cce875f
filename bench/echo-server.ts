import Fastify from "fastify";

/**
 * Baseline for bench/http.ts: a bare Fastify server that answers `POST /echo` with the JSON body it received.
 * Runs as a child process; prints `serving on <url>` to stderr once it listens and exits on SIGTERM.
 */
const app = Fastify();
app.post("/echo", async (request) => request.body);
const url = await app.listen({ host: "127.0.0.1", port: 0 });
process.stderr.write(`serving on ${url}\n`);
process.once("SIGTERM", () => {
  void app.close().then(() => process.exit(0));
});
