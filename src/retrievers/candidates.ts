/**
 * The retriever → ranker hand-off: retriever/candidates.jsonl, one JSON object per (split, user):
 *   {"split":"val"|"test","user":u,"label":i,"labelRank":r,"candidates":[i1..i20],"scores":[s1..s20]}
 * candidates = top items by retriever score, best first (ties: smaller item id first), history excluded
 * with the run's policy, the label never excluded; labelRank = the label's full-ranking rank under the
 * same exclusion and the run's tie policy. Full specification: docs/formats.md.
 */
import { readFile } from "node:fs/promises";
import { writeFileAtomic } from "../util/atomic.js";
import { InputError } from "../util/errors.js";
import { parseJsonLines } from "../util/jsonl.js";
import type { EvalSplit } from "./batches.js";
import type { SplitEvaluation } from "./evaluate.js";

export interface CandidateRecord {
  split: EvalSplit;
  user: number;
  label: number;
  labelRank: number;
  candidates: number[];
  scores: number[];
}

export function candidateRecords(evaluation: SplitEvaluation): CandidateRecord[] {
  return evaluation.results.map((r) => {
    if (!r.candidates || !r.scores) throw new Error(`user ${r.user}: evaluation kept no candidates`);
    return {
      split: evaluation.split,
      user: r.user,
      label: r.label,
      labelRank: r.rank,
      candidates: r.candidates,
      scores: r.scores,
    };
  });
}

export function formatCandidates(records: Iterable<CandidateRecord>): string {
  let out = "";
  for (const r of records) {
    // Fixed key order so files diff cleanly.
    out += `${JSON.stringify({
      split: r.split,
      user: r.user,
      label: r.label,
      labelRank: r.labelRank,
      candidates: r.candidates,
      scores: r.scores.map(shortestFloat32),
    })}\n`;
  }
  return out;
}

/**
 * The shortest decimal that reads back (through Math.fround) as the same float32: scores are float32,
 * and printing their float64 expansion (0.30000001192092896) would double the file for no information.
 * Values that are not float32 are returned unchanged.
 */
export function shortestFloat32(v: number): number {
  if (!Number.isFinite(v) || Math.fround(v) !== v) return v;
  for (let p = 1; p <= 9; p++) {
    const d = Number(v.toPrecision(p));
    if (Math.fround(d) === v) return d;
  }
  return v;
}

export async function writeCandidates(path: string, records: Iterable<CandidateRecord>): Promise<void> {
  await writeFileAtomic(path, formatCandidates(records));
}

export function parseCandidates(text: string, file: string): CandidateRecord[] {
  const seen = new Set<string>();
  return parseJsonLines(
    text,
    file,
    "expected an object {split, user, label, labelRank, candidates, scores}",
    ({ fields: o, fail, positiveInt, rank }) => {
      if (o.split !== "val" && o.split !== "test")
        fail(`field "split": expected "val" or "test", got ${JSON.stringify(o.split)}`);
      const split = o.split as EvalSplit;
      const user = positiveInt("user");
      const label = positiveInt("label");
      const labelRank = rank("labelRank");
      const candidates = o.candidates;
      if (
        !Array.isArray(candidates) ||
        candidates.some((c) => typeof c !== "number" || !Number.isInteger(c) || c < 1)
      ) {
        fail(`field "candidates": expected an array of positive integer item ids`);
      }
      const cands = candidates as number[];
      if (new Set(cands).size !== cands.length) fail(`field "candidates": an item appears twice`);
      const scores = o.scores;
      if (
        !Array.isArray(scores) ||
        scores.length !== cands.length ||
        scores.some((s) => typeof s !== "number")
      ) {
        fail(`field "scores": expected ${cands.length} numbers, one per candidate`);
      }
      const key = `${split}:${user}`;
      if (seen.has(key)) fail(`user ${user} appears twice in split "${split}"`);
      seen.add(key);
      return {
        split,
        user,
        label,
        labelRank,
        candidates: cands,
        scores: scores as number[],
      };
    },
  );
}

export async function readCandidates(path: string): Promise<CandidateRecord[]> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new InputError(`cannot read candidates file ${path}: ${(err as Error).message}`);
  }
  return parseCandidates(text, path);
}

/** Share of records of a split whose label is among the candidates (the ranker's ceiling). */
export function labelCoverage(
  records: readonly CandidateRecord[],
  split: EvalSplit,
): { users: number; covered: number; share: number } {
  let users = 0;
  let covered = 0;
  for (const r of records) {
    if (r.split !== split) continue;
    users++;
    if (r.candidates.includes(r.label)) covered++;
  }
  return { users, covered, share: users === 0 ? Number.NaN : covered / users };
}
