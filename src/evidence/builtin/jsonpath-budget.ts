/*
 * The work one JSONPath evaluation may do. RFC 9535 queries can cost far more than the document's size: a filter
 * that runs a descendant query (`$[?count($..*) > 0]`) walks the whole document once per element, `$..*..*`
 * visits every node once per ancestor, and `$[0,0,0,0]` copies the selected value into the answer four times.
 * Deterministic counts stop such queries after the same work on any machine; the worker's time and memory limits
 * (json-worker-client.ts) are the backstop for costs the counts do not see.
 */

/**
 * Steps one evaluation may take. A step is one node queued for visiting, plus one per key of its path (the
 * evaluator copies the path), or one segment, selector or expression evaluated. On a shared, busy 2-core machine
 * the budget ran out after 0.4–2.3 s (40–230 ns a step), while ordinary queries over 1 MiB documents took a
 * fraction of it (docs/providers-json.md).
 */
export const MAX_JSONPATH_STEPS = 10_000_000;

/**
 * Nodes in the answer, counting every node of every selected value: twice as many as a 1 MiB document can hold,
 * so the server handles a selection (copying, hashing, storing it) about as fast as a whole document.
 */
export const MAX_JSONPATH_RESULT_NODES = 1_000_000;

/** A JSONPath limit was reached: the evaluation stops, and the query fails with `jsonpath_limit_exceeded`. */
export class JsonPathLimitExceeded extends Error {}

export class JsonPathBudget {
  private stepsLeft = MAX_JSONPATH_STEPS;
  private resultNodesLeft = MAX_JSONPATH_RESULT_NODES;

  charge(steps: number): void {
    this.stepsLeft -= steps;
    if (this.stepsLeft < 0) {
      throw new JsonPathLimitExceeded(`jsonpath evaluation exceeds ${MAX_JSONPATH_STEPS} steps`);
    }
  }

  /** Counts the nodes of a selected (plain JSON) value into the answer's size. */
  chargeResult(value: unknown): void {
    const pending = [value];
    while (pending.length > 0) {
      if (--this.resultNodesLeft < 0) {
        throw new JsonPathLimitExceeded(`jsonpath result exceeds ${MAX_JSONPATH_RESULT_NODES} nodes`);
      }
      const node = pending.pop();
      if (typeof node === "object" && node !== null) for (const child of Object.values(node)) pending.push(child);
    }
  }
}
