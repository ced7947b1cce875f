import type { AttestationInspection } from "../../core/runpack/attestation.js";
import type { TriState } from "../../core/wire/common.js";
import type { SignatureStatus } from "./load.js";
import type {
  ConditionView,
  EvidenceView,
  GateView,
  ReceiptView,
  ReportModel,
  SubmissionView,
  TimelineEntry,
  TreeNode,
} from "./model.js";

/*
 * Renders a report model as one self-contained HTML page: inline CSS, no script, no external resource, and a
 * Content-Security-Policy that forbids loading anything. Every value from the runpack goes through `html`,
 * which escapes it, so a hostile runpack cannot inject markup.
 */

/** Markup that is already escaped. */
class Html {
  constructor(readonly text: string) {}
}

type Part = Html | string | number | null | undefined | readonly Part[];

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => ESCAPES[char] ?? char);
}

function render(part: Part): string {
  if (part === null || part === undefined) return "";
  if (part instanceof Html) return part.text;
  if (Array.isArray(part)) return part.map(render).join("");
  return escapeHtml(String(part));
}

/** A template whose interpolated values are escaped unless they are `Html` already. */
function html(strings: TemplateStringsArray, ...values: Part[]): Html {
  return new Html(
    strings.reduce((out, text, index) => out + text + (index < values.length ? render(values[index]) : ""), ""),
  );
}

export function renderReportHtml(model: ReportModel, options: { generator: string }): string {
  const subject =
    model.subject === null ? "unreadable manifest" : `${model.subject.scenarioId} / ${model.subject.runId}`;
  const page = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Runpack report: ${subject}</title>
<style>${new Html(STYLE)}</style>
</head>
<body>
<header><h1>Decision Gate runpack report</h1><p class="subtitle">${subject}</p></header>
<main>
${verificationSection(model)}
${runSection(model)}
${timelineSection(model.timeline)}
${gatesSection(model.timeline)}
${submissionsSection(model.submissions)}
</main>
<footer>${options.generator}. This page is self-contained: it loads nothing from the network.</footer>
</body>
</html>
`;
  return page.text;
}

function verificationSection({ verification, rootHash }: ReportModel): Html {
  const { status } = verification;
  const errors =
    verification.errors.length === 0
      ? html`<p class="ok">All checks passed.</p>`
      : html`<h3>Problems found</h3><ul class="errors">${verification.errors.map((error) => html`<li>${error}</li>`)}</ul>`;
  const unreadable =
    verification.unreadable.length === 0
      ? null
      : html`<h3>Logs that could not be shown</h3><ul class="errors">${verification.unreadable.map((item) => html`<li>${item}</li>`)}</ul>`;
  const warning =
    status === "pass"
      ? null
      : html`<p class="warning">The files below failed verification: treat everything this report shows from them as unproven.</p>`;
  return html`<section id="verification" class="verdict verdict-${status}" data-status="${status}">
<h2>Verification: <span class="verdict-word">${status.toUpperCase()}</span></h2>
<dl class="facts">
<dt>Root hash</dt><dd><code id="root-hash">${rootHash ?? "(no manifest)"}</code></dd>
<dt>Checked files</dt><dd>${verification.checkedFiles}</dd>
<dt>Signature</dt><dd id="signature" data-state="${verification.signature.state}">${signatureText(verification.signature)}</dd>
<dt>Attestation</dt>${attestationItem(verification.attestation)}
</dl>
${errors}${unreadable}${warning}
</section>`;
}

function signatureText(signature: SignatureStatus): Html {
  switch (signature.state) {
    case "unsigned":
      return html`not signed`;
    case "valid":
      return signature.pinned
        ? html`valid, by the required key <code>${signature.keyId}</code>`
        : html`intact, signed by key <code>${signature.keyId}</code> (not checked against a trusted key: pass <code>--verify-key</code>)`;
    case "invalid":
      return html`<strong>${signature.problem}</strong>${signature.keyId === null ? null : html` (key <code>${signature.keyId}</code>)`}`;
  }
}

function attestationItem(attestation: AttestationInspection | null): Html {
  if (attestation === null) return html`<dd id="attestation" data-state="none">none</dd>`;
  const { summary, signature } = attestation;
  const state = attestation.problems.length === 0 ? "valid" : "invalid";
  const claim =
    summary === null
      ? html`unreadable`
      : html`<strong data-result="${summary.verificationResult}">${summary.verificationResult}</strong>, verified by <code>${summary.verifierId}</code> at ${summary.timeVerified}`;
  const signed =
    signature.state === "invalid"
      ? html`<strong>${signature.problem}</strong>`
      : signature.pinned
        ? html`signature valid, by the required key <code>${signature.keyId}</code>`
        : html`signature intact, by key <code>${signature.keyId}</code> (not checked against a trusted key)`;
  const problems = attestation.problems.length === 0 ? null : html`; does not hold: ${attestation.problems.join("; ")}`;
  return html`<dd id="attestation" data-state="${state}">in-toto SLSA verification summary: ${claim}; ${signed}${problems}</dd>`;
}

function runSection({ identity, counts }: ReportModel): Html {
  return html`<section id="run"><h2>Run</h2>
<dl class="facts">${identity.map(([label, value]) => html`<dt>${label}</dt><dd>${value}</dd>`)}</dl>
<ul class="counts">${counts.map(([label, count]) => html`<li><strong>${count}</strong> ${label}</li>`)}</ul>
</section>`;
}

function timelineSection(timeline: readonly TimelineEntry[]): Html {
  const rows = timeline.map(
    (entry) => html`<tr class="timeline-row">
<td>${entry.seq}</td><td>${entry.time}</td>
<td><code>${entry.triggerId}</code><br><span class="muted">${entry.kind}${entry.source === "" ? null : html` from ${entry.source}`}</span></td>
<td>${entry.gates.map((gate) => html`<a class="gate-link" href="#${entry.anchor}">${tri(gate.status)} ${gate.gateId}</a> `)}</td>
<td>${entry.decision === null ? html`<span class="muted">none</span>` : html`<span class="outcome outcome-${entry.decision.outcome}">${entry.decision.outcome}</span> ${entry.decision.summary}<br><span class="muted">${entry.decision.decisionId} · ${entry.decision.decidedAt}</span>`}</td>
<td>${receiptCell(entry.receipt)}</td>
</tr>`,
  );
  return html`<section id="timeline"><h2>Timeline</h2>
<p class="muted">Triggers in log order, each with the gates it evaluated, the decision it produced and that decision's action receipt.</p>
<table class="timeline"><colgroup><col class="col-seq"><col class="col-time"><col class="col-trigger"><col class="col-gates"><col class="col-decision"><col class="col-action"></colgroup>
<thead><tr><th>seq</th><th>time</th><th>trigger</th><th>gates</th><th>decision</th><th>action</th></tr></thead>
<tbody>${rows}</tbody></table>
</section>`;
}

function receiptCell(receipt: ReceiptView | null): Html {
  if (receipt === null) return html`<span class="muted">no receipt</span>`;
  const isolated =
    receipt.isolated.length === 0
      ? null
      : html`<br><span class="muted">isolated: ${receipt.isolated.join(", ")}</span>`;
  return html`<span class="action action-${receipt.action}" title="${receipt.reasons.join("; ")}">${receipt.action}</span> (${receipt.runtimeDecision})${isolated}<br><code class="hash" title="receipt_sha256">${receipt.receiptSha256.slice(0, 16)}…</code>`;
}

/** Beyond this many triggers with gate evaluations, each starts folded so that long runs stay readable. */
const MAX_OPEN_EVALUATIONS = 50;

function gatesSection(timeline: readonly TimelineEntry[]): Html {
  const evaluated = timeline.filter((entry) => entry.gates.length > 0);
  const open = evaluated.length <= MAX_OPEN_EVALUATIONS ? new Html(" open") : null;
  const articles = evaluated.map(
    (entry) => html`<details id="${entry.anchor}" class="evaluation"${open}>
<summary><h3>Trigger <code>${entry.triggerId}</code> <span class="muted">seq ${entry.seq} · ${entry.time}</span> ${entry.gates.map((gate) => tri(gate.status))}</h3></summary>
${entry.gates.map(gateBlock)}
</details>`,
  );
  return html`<section id="gates"><h2>Gate evaluations</h2>
<p class="muted">Each gate's requirement tree. Condition statuses are as recorded; the status of each group is recomputed from them in tri-state logic.</p>
${evaluated.length === 0 ? html`<p class="muted">No gate was evaluated.</p>` : articles}
</section>`;
}

function gateBlock(gate: GateView): Html {
  const body =
    gate.tree === null
      ? html`<p class="warning">The spec has no gate ${gate.gateId} in stage ${gate.stageId}; recorded conditions:</p><ul class="tree">${gate.conditions.map((condition) => html`<li class="node">${conditionLeaf(condition)}</li>`)}</ul>`
      : html`<ul class="tree">${treeItem(gate.tree)}</ul>`;
  return html`<div class="gate" data-gate="${gate.gateId}" data-status="${gate.status}">
<h4>${tri(gate.status)} gate <code>${gate.gateId}</code> <span class="muted">stage ${gate.stageId}</span></h4>
${body}
</div>`;
}

const GROUP_LABELS = { all: "all of", any: "any of", not: "not" } as const;

function treeItem(node: TreeNode): Html {
  if (node.kind === "condition") return html`<li class="node">${conditionLeaf(node.condition)}</li>`;
  const label = node.kind === "at_least" ? `at least ${node.min} of` : GROUP_LABELS[node.kind];
  return html`<li class="node group">${tri(node.status)} <span class="group-label">${label}</span>
<ul>${node.children.map(treeItem)}</ul></li>`;
}

function conditionLeaf(condition: ConditionView): Html {
  return html`<div class="condition" data-condition="${condition.conditionId}" data-status="${condition.status}">
${tri(condition.status)} <code class="condition-id">${condition.conditionId}</code>
<span class="query">${condition.query}</span> <span class="comparator">${condition.comparator}</span> <code class="expected">${condition.expected}</code>
${condition.evidence === null ? html`<div class="evidence muted">no evidence recorded</div>` : evidenceFacts(condition.evidence)}
</div>`;
}

function evidenceFacts(evidence: EvidenceView): Html {
  const facts: Array<[string, Part]> = [
    ["value", html`<code>${evidence.value}</code>`],
    ["hash", evidence.hash === null ? "none" : html`<code class="hash">${evidence.hash}</code>`],
    ["anchor", evidence.anchor ?? "none"],
    ["lane", evidence.lane],
    ["signature", evidence.signature ?? "none"],
  ];
  if (evidence.error !== null) facts.push(["error", html`<strong>${evidence.error}</strong>`]);
  return html`<dl class="evidence">${facts.map(([label, value]) => html`<dt>${label}</dt><dd>${value}</dd>`)}</dl>`;
}

function submissionsSection(submissions: readonly SubmissionView[]): Html | null {
  if (submissions.length === 0) return null;
  return html`<section id="submissions"><h2>Submissions</h2>
<p class="muted">Payloads are not shown; the content hash identifies each.</p>
<table><thead><tr><th>submission</th><th>submitted</th><th>content type</th><th>content hash</th></tr></thead>
<tbody>${submissions.map((item) => html`<tr><td><code>${item.submissionId}</code></td><td>${item.submittedAt}</td><td>${item.contentType}</td><td><code class="hash">${item.contentHash}</code></td></tr>`)}</tbody></table>
</section>`;
}

function tri(status: TriState): Html {
  return html`<span class="tri tri-${status.toLowerCase()}">${status}</span>`;
}

const STYLE = `
:root { --true: #1a7f37; --false: #cf222e; --unknown: #9a6700; --muted: #59636e; --line: #d1d9e0; }
* { box-sizing: border-box; }
body { font: 14px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328; margin: 0; background: #f6f8fa; }
header, main, footer { max-width: 1200px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 24px; }
h1 { font-size: 22px; margin: 0; }
h2 { font-size: 18px; margin: 0 0 12px; }
h3 { font-size: 15px; margin: 16px 0 8px; }
h4 { font-size: 14px; margin: 8px 0; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px; margin: 16px 0; }
code { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; overflow-wrap: anywhere; }
.subtitle, .muted { color: var(--muted); }
.verdict { border-width: 2px; }
.verdict-pass { border-color: var(--true); }
.verdict-fail { border-color: var(--false); background: #fff5f5; }
.verdict-word { padding: 2px 10px; border-radius: 6px; color: #fff; }
.verdict-pass .verdict-word { background: var(--true); }
.verdict-fail .verdict-word { background: var(--false); }
.ok { color: var(--true); }
.errors li, .warning { color: var(--false); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
.counts { display: flex; flex-wrap: wrap; gap: 8px 24px; list-style: none; padding: 0; margin: 12px 0 0; }
table { border-collapse: collapse; width: 100%; }
/* A fixed layout and off-screen rows left unrendered keep a timeline of thousands of rows quick to open. */
table.timeline { table-layout: fixed; }
.col-seq { width: 6%; } .col-time { width: 10%; } .col-trigger { width: 22%; }
.col-gates { width: 18%; } .col-decision { width: 24%; } .col-action { width: 20%; }
.timeline-row, .evaluation { content-visibility: auto; contain-intrinsic-size: auto 56px; }
th, td { text-align: left; vertical-align: top; border-top: 1px solid var(--line); padding: 6px 8px; }
th { color: var(--muted); font-weight: 600; }
.tri, .outcome, .action { display: inline-block; padding: 0 6px; border-radius: 4px; font-size: 12px; font-weight: 600; color: #fff; }
.tri-true, .outcome-advance, .outcome-complete, .outcome-start, .action-continue { background: var(--true); }
.tri-false, .outcome-fail, .action-terminate { background: var(--false); }
.tri-unknown, .outcome-hold, .action-isolate_and_continue { background: var(--unknown); }
.gate-link { color: inherit; text-decoration: none; margin-right: 6px; white-space: nowrap; }
.evaluation { border-top: 1px solid var(--line); padding-top: 4px; }
.evaluation > summary { cursor: pointer; }
.evaluation > summary h3 { display: inline; }
.gate { margin-left: 8px; }
ul.tree, ul.tree ul { list-style: none; margin: 0; padding-left: 20px; border-left: 1px dashed var(--line); }
.node { margin: 4px 0; }
.group-label { font-weight: 600; }
.query { color: var(--muted); }
.comparator { font-style: italic; }
dl.evidence { display: grid; grid-template-columns: max-content 1fr; gap: 0 12px; margin: 2px 0 6px 24px; font-size: 12px; }
dl.evidence dt { color: var(--muted); }
dl.evidence dd { margin: 0; }
.evidence.muted { margin-left: 24px; font-size: 12px; }
footer { color: var(--muted); font-size: 12px; padding-bottom: 24px; }
`;
