/**
 * Every per-user result file llamarec writes, read back for `llamarec metrics`:
 *   - plain per-user ranks, {user, label, rank[, ties]} (src/eval/user-ranks.ts);
 *   - a run's retriever/candidates.jsonl, {split, user, label, labelRank, candidates, scores} (src/retrievers/candidates.ts);
 *   - a run's ranker/ranked.jsonl, {split, user, label, labelRankBefore, labelRankAfter, candidates, scores}
 *     (formatRanked in src/ranker/rank.ts; parsed here, round-trip tested against that writer).
 * The kind is told by the first line's fields; every line is then validated as that kind, with file and
 * line in the error.
 */
import { readFile, stat } from "node:fs/promises";
import { parseUserRanks, type UserRank } from "../eval/user-ranks.js";
import type { RankedRecord } from "../ranker/rank.js";
import { type CandidateRecord, parseCandidates } from "../retrievers/candidates.js";
import { InputError } from "../util/errors.js";
import { parseJsonLines } from "../util/jsonl.js";

export type Split = "val" | "test";

export type PerUserFile =
  | { kind: "ranks"; path: string; ranks: UserRank[] }
  | { kind: "candidates"; path: string; records: CandidateRecord[] }
  | { kind: "ranked"; path: string; records: RankedRecord[] };

export const KIND_NAMES: Record<PerUserFile["kind"], string> = {
  ranks: "per-user ranks {user, label, rank}",
  candidates: "retriever candidates (candidates.jsonl)",
  ranked: "ranker output (ranked.jsonl)",
};

export async function readPerUserFile(path: string): Promise<PerUserFile> {
  let text: string;
  try {
    if ((await stat(path)).isDirectory())
      throw new InputError(`${path} is a folder, not a per-user results file`);
    text = await readFile(path, "utf8");
  } catch (err) {
    if (err instanceof InputError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError(
      code === "ENOENT"
        ? `${path}: no such file`
        : `cannot read per-user results ${path}: ${(err as Error).message}`,
    );
  }
  return parsePerUserFile(text, path);
}

export function parsePerUserFile(text: string, path: string): PerUserFile {
  const first = text.split("\n").find((l) => l.trim() !== "");
  let fields: Record<string, unknown> = {};
  try {
    const v: unknown = first === undefined ? {} : JSON.parse(first);
    if (typeof v === "object" && v !== null && !Array.isArray(v)) fields = v as Record<string, unknown>;
  } catch {
    // parseUserRanks names the line.
  }
  if ("labelRankAfter" in fields) return { kind: "ranked", path, records: parseRanked(text, path) };
  if ("labelRank" in fields && "candidates" in fields)
    return { kind: "candidates", path, records: parseCandidates(text, path) };
  return { kind: "ranks", path, ranks: parseUserRanks(text, path) };
}

/** ranker/ranked.jsonl, as formatRanked writes it. */
export function parseRanked(text: string, file: string): RankedRecord[] {
  const seen = new Set<string>();
  return parseJsonLines(
    text,
    file,
    "expected a JSON object",
    ({ fields: o, fail, positiveInt: posInt, rank }) => {
      if (o.split !== "val" && o.split !== "test")
        fail(`field "split": expected "val" or "test", got ${JSON.stringify(o.split)}`);
      const split = o.split as Split;
      const user = posInt("user");
      const label = posInt("label");
      const before = rank("labelRankBefore");
      const candidates = o.candidates;
      if (!Array.isArray(candidates) || candidates.some((c) => !Number.isInteger(c) || c < 1))
        fail(`field "candidates": expected an array of positive item ids`);
      const items = candidates as number[];
      const scores = o.scores;
      if (
        !Array.isArray(scores) ||
        scores.length !== items.length ||
        scores.some((s) => s !== null && typeof s !== "number")
      )
        fail(`field "scores": expected ${items.length} numbers (or null), one per candidate`);
      const after = o.labelRankAfter === null ? null : posInt("labelRankAfter");
      if (after !== null && items[after - 1] !== label)
        fail(`field "labelRankAfter": candidate ${after} is ${items[after - 1]}, not the label ${label}`);
      if (after === null && items.includes(label))
        fail(`field "labelRankAfter": null, but the label ${label} is among the candidates`);
      const key = `${split}:${user}`;
      if (seen.has(key)) fail(`${split} user ${user} appears twice`);
      seen.add(key);
      return {
        split,
        user,
        label,
        candidates: items,
        scores: (scores as Array<number | null>).map((s) => (s === null ? Number.NEGATIVE_INFINITY : s)),
        labelRankBefore: before,
        labelRankAfter: after,
      };
    },
  );
}

/** Splits present in a run file, validation first. */
export function splitsOf(records: readonly { split: Split }[]): Split[] {
  return (["val", "test"] as const).filter((s) => records.some((r) => r.split === s));
}
