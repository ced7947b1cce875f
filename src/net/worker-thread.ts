import path from "node:path";
import { fileURLToPath } from "node:url";
import { Worker, type WorkerOptions } from "node:worker_threads";

/**
 * Starts the worker-thread module `name` (no extension) that lies next to the module at `besideUrl` (its
 * `import.meta.url`). From TypeScript sources (tests, `tsx`) that is a .ts file, which the worker can only load after
 * registering tsx itself: Node 20 does not hand module loaders on to workers.
 */
export function startWorkerThread(besideUrl: string, name: string, options: WorkerOptions = {}): Worker {
  const extension = path.extname(fileURLToPath(besideUrl));
  const entry = new URL(`./${name}${extension}`, besideUrl);
  if (extension !== ".ts") return new Worker(entry, options);
  const tsx = import.meta.resolve("tsx/esm/api");
  const bootstrap = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(bootstrap, { ...options, eval: true });
}
