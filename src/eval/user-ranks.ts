import { readFile } from "node:fs/promises";
import { writeFileAtomic } from "../util/atomic.js";
import { InputError, RowError } from "../util/errors.js";

/** One evaluated user: dense user id, held-out item id, and that item's 1-based rank (maybe fractional). */
export interface UserRank {
  user: number;
  label: number;
  rank: number;
  /** Expected-tie mode only: other items scoring exactly the label's score (rank is their mean position). */
  ties?: number;
}

/** One JSON object per line, so any metric at any k can be recomputed later without re-scoring. */
export function formatUserRanks(results: Iterable<UserRank>): string {
  const lines: string[] = [];
  for (const r of results) {
    const row: UserRank = { user: r.user, label: r.label, rank: r.rank };
    if (r.ties) row.ties = r.ties;
    lines.push(JSON.stringify(row));
  }
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
}

export async function writeUserRanks(path: string, results: Iterable<UserRank>): Promise<void> {
  await writeFileAtomic(path, formatUserRanks(results));
}

export function parseUserRanks(text: string, file: string): UserRank[] {
  const out: UserRank[] = [];
  const seen = new Set<number>();
  const lines = text.split("\n");
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === "") return;
    const lineNo = i + 1;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new RowError(file, lineNo, "not valid JSON");
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new RowError(file, lineNo, "expected an object {user, label, rank}");
    }
    const obj = value as Record<string, unknown>;
    const user = positiveInt(obj.user, "user", file, lineNo);
    const label = positiveInt(obj.label, "label", file, lineNo);
    const rank = obj.rank;
    if (typeof rank !== "number" || !Number.isFinite(rank) || rank < 1) {
      throw new RowError(file, lineNo, `field "rank": expected a number >= 1, got ${JSON.stringify(rank)}`);
    }
    const ties = obj.ties;
    if (ties !== undefined && (typeof ties !== "number" || !Number.isInteger(ties) || ties < 0)) {
      throw new RowError(
        file,
        lineNo,
        `field "ties": expected a non-negative integer, got ${JSON.stringify(ties)}`,
      );
    }
    if (seen.has(user)) throw new RowError(file, lineNo, `user ${user} appears twice`);
    seen.add(user);
    out.push(ties ? { user, label, rank, ties } : { user, label, rank });
  });
  return out;
}

export async function readUserRanks(path: string): Promise<UserRank[]> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new InputError(`cannot read per-user results ${path}: ${(err as Error).message}`);
  }
  return parseUserRanks(text, path);
}

function positiveInt(v: unknown, field: string, file: string, line: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
    throw new RowError(file, line, `field "${field}": expected a positive integer, got ${JSON.stringify(v)}`);
  }
  return v;
}
