import { MethodNotFoundError } from "../../core/errors.js";
import { DocsSearchRequest, searchDocs } from "../docs/search.js";
import { defineTool } from "./tool.js";

/** `decision_gate_docs_search`: exists only while `[docs] enabled` and `enable_search` are on. */
const docsSearch = defineTool({
  name: "decision_gate_docs_search",
  args: DocsSearchRequest,
  argumentSize: "small",
  annotations: { readOnlyHint: true, idempotentHint: true },
  available: (services) => services.docs?.search === true,
  async run(request, { services }) {
    const docs = services.docs;
    if (docs === null) throw new MethodNotFoundError("unknown tool");
    return searchDocs(docs.catalog, request, docs.maxSections);
  },
});

export const DOCS_TOOLS = [docsSearch];
