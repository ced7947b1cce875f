/** Resolves once `condition` holds, checking every 10 ms; fails after `timeoutMs`. Resolves to the ms it took. */
export async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<number> {
  const started = Date.now();
  while (!(await condition())) {
    if (Date.now() - started > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return Date.now() - started;
}
