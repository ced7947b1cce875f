import { z } from "zod";
import { compareUtf8, type DocEntry, type DocRole, type DocsCatalog } from "./catalog.js";

/*
 * `decision_gate_docs_search`: deterministic, heading-first lexical search over the catalog's markdown sections.
 * A section scores 3 per query term found in its heading and 1 per term found in its body; sections that match
 * nothing are dropped; a role the query hints at (see ROLE_CUES) adds 2 (the strongest hint) or 1 (any other).
 * Ties go to the earlier doc in the catalog, then to the heading in byte order. A blank query gets an overview:
 * the opening section of the first doc of each role.
 */

export const DEFAULT_MAX_SECTIONS = 3;
export const ABSOLUTE_MAX_SECTIONS = 10;

/** The tool input; `max_sections` is any u32 (out-of-range values are clamped, not refused, as the reference does). */
export const DocsSearchRequest = z.object({
  query: z.string(),
  max_sections: z.bigint().gte(0n).lte(0xffff_ffffn).nullish(),
});
export type DocsSearchRequest = { query: string; max_sections?: bigint | number | null };

export type SearchSection = {
  rank: bigint;
  doc_id: string;
  doc_title: string;
  doc_role: DocRole;
  heading: string;
  content: string;
};
export type DocCoverage = { doc_id: string; doc_title: string; doc_role: DocRole };
export type DocsSearchResult = {
  sections: SearchSection[];
  docs_covered: DocCoverage[];
  suggested_followups: string[];
};

/** A markdown section: the text under a `##` or `###` heading; the text before the first one is headed by the title. */
export interface DocSection {
  readonly heading: string;
  readonly content: string;
}

const ROLE_ORDER: readonly DocRole[] = ["reasoning", "decision", "ontology", "pattern"];

/** Words (matched as whole words, unlike the reference's substring match, so `ret` does not fire on `secret`). */
const ROLE_CUES: Readonly<Record<DocRole, readonly string[]>> = {
  reasoning: ["why", "trust", "evidence", "security", "invariant"],
  decision: ["which tool", "precheck", "scenario", "runpack", "start", "next"],
  ontology: ["schema", "provider", "comparator", "condition", "ret", "jsonpath"],
  pattern: ["playbook", "workflow", "recipe", "integration", "example"],
};

const MISSING_ROLE_FOLLOWUPS: Readonly<Record<DocRole, string>> = {
  decision: "For behaviour that differs from the reference implementation, search the differences doc.",
  reasoning: "For conceptual grounding, query the architecture: JSON model, control plane, evidence, runpacks.",
  pattern: "For configuration recipes, search the json or http provider guides.",
  ontology: "For provider, trust lane or disclosure details, search the providers doc.",
};
const FOLLOWUP_ORDER: readonly DocRole[] = ["decision", "reasoning", "pattern", "ontology"];
const OVERVIEW_FOLLOWUP = "Refine the query with provider, trust, runpack or comparator keywords to target guidance.";

/**
 * Runs a search. `configuredMaxSections` is `[docs] max_sections`; the requested count (default 3) is clamped to
 * `[1, min(configuredMaxSections, 10)]`.
 */
export function searchDocs(
  catalog: DocsCatalog,
  request: DocsSearchRequest,
  configuredMaxSections: number | bigint = ABSOLUTE_MAX_SECTIONS,
): DocsSearchResult {
  const limit = sectionLimit(request.max_sections, configuredMaxSections);
  const query = request.query.trim();
  return query === "" ? overview(catalog.docs, limit) : rankedSections(catalog.docs, query.toLowerCase(), limit);
}

function sectionLimit(requested: bigint | number | null | undefined, configured: number | bigint): number {
  const ceiling = clamp(Number(configured), 1, ABSOLUTE_MAX_SECTIONS);
  return clamp(Number(requested ?? DEFAULT_MAX_SECTIONS), 1, ceiling);
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(Math.max(value, min), max);
}

/** Splits a doc at `##` and `###` headings (outside fenced code blocks); empty sections are kept for their heading. */
export function splitSections(doc: DocEntry): DocSection[] {
  const sections: DocSection[] = [];
  let heading = doc.title;
  let lines: string[] = [];
  let inFence = false;
  for (const line of doc.markdown.split("\n").map((text) => text.replace(/\r$/, ""))) {
    if (/^(```|~~~)/.test(line)) inFence = !inFence;
    const subheading = inFence ? null : /^#{2,3} (.*)$/.exec(line)?.[1];
    if (subheading === undefined || subheading === null) {
      lines.push(line);
      continue;
    }
    sections.push(section(heading, lines));
    heading = subheading;
    lines = [];
  }
  sections.push(section(heading, lines));
  return sections.filter((entry) => entry.heading !== "" || entry.content !== "");
}

function section(heading: string, lines: readonly string[]): DocSection {
  return { heading: heading.trim(), content: lines.join("\n").trim() };
}

interface Candidate {
  score: number;
  docIndex: number;
  doc: DocEntry;
  section: DocSection;
}

function rankedSections(docs: readonly DocEntry[], query: string, limit: number): DocsSearchResult {
  const terms = query.split(/\s+/).filter((term) => term !== "");
  const bonuses = roleBonuses(query);
  const candidates: Candidate[] = docs.flatMap((doc, docIndex) =>
    splitSections(doc).map((section) => ({ score: lexicalScore(section, terms), docIndex, doc, section })),
  );
  const matches = candidates
    .filter((candidate) => candidate.score > 0)
    .map((candidate) => ({ ...candidate, score: candidate.score + (bonuses.get(candidate.doc.role) ?? 0) }))
    .sort(byRank);
  const sections = matches.slice(0, limit).map((match, rank) => searchSection(rank, match.doc, match.section));
  const docsCovered = coverage(sections);
  return { sections, docs_covered: docsCovered, suggested_followups: followups(docsCovered) };
}

function lexicalScore(section: DocSection, terms: readonly string[]): number {
  const heading = section.heading.toLowerCase();
  const content = section.content.toLowerCase();
  let score = 0;
  for (const term of terms) {
    if (heading.includes(term)) score += 3;
    if (content.includes(term)) score += 1;
  }
  return score;
}

function byRank(a: Candidate, b: Candidate): number {
  return b.score - a.score || a.docIndex - b.docIndex || compareUtf8(a.section.heading, b.section.heading);
}

/** +2 for the role with the most cue words in the query (earlier role on a tie), +1 for every other cued role. */
function roleBonuses(query: string): Map<DocRole, number> {
  const counts = ROLE_ORDER.map((role) => ({
    role,
    count: ROLE_CUES[role].filter((cue) => hasWord(query, cue)).length,
  }))
    .filter((entry) => entry.count > 0)
    .sort((a, b) => b.count - a.count || ROLE_ORDER.indexOf(a.role) - ROLE_ORDER.indexOf(b.role));
  return new Map(counts.map((entry, index) => [entry.role, index === 0 ? 2 : 1]));
}

function hasWord(text: string, phrase: string): boolean {
  return new RegExp(`(^|[^a-z0-9_])${phrase}($|[^a-z0-9_])`).test(text);
}

function overview(docs: readonly DocEntry[], limit: number): DocsSearchResult {
  const sections: SearchSection[] = [];
  for (const role of ROLE_ORDER) {
    const doc = docs.find((entry) => entry.role === role);
    const intro = doc === undefined ? undefined : splitSections(doc)[0];
    if (sections.length < limit && doc !== undefined && intro !== undefined) {
      sections.push(searchSection(sections.length, doc, intro));
    }
  }
  return { sections, docs_covered: coverage(sections), suggested_followups: [OVERVIEW_FOLLOWUP] };
}

function searchSection(rank: number, doc: DocEntry, section: DocSection): SearchSection {
  return {
    rank: BigInt(rank),
    doc_id: doc.doc_id,
    doc_title: doc.title,
    doc_role: doc.role,
    heading: section.heading,
    content: section.content,
  };
}

/** The docs behind `sections`, each once, in order of first appearance. */
function coverage(sections: readonly SearchSection[]): DocCoverage[] {
  const seen = new Set<string>();
  return sections
    .filter((entry) => !seen.has(entry.doc_id) && seen.add(entry.doc_id))
    .map(({ doc_id, doc_title, doc_role }) => ({ doc_id, doc_title, doc_role }));
}

/** One pointer per role the results did not cover; none when nothing matched. */
function followups(covered: readonly DocCoverage[]): string[] {
  if (covered.length === 0) return [];
  const present = new Set(covered.map((entry) => entry.doc_role));
  return FOLLOWUP_ORDER.filter((role) => !present.has(role)).map((role) => MISSING_ROLE_FOLLOWUPS[role]);
}
