import { readFile } from "node:fs/promises";
import { writeFileAtomic } from "../util/atomic.js";
import { InputError } from "../util/errors.js";
import { parseJsonLines } from "../util/jsonl.js";

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
  const seen = new Set<number>();
  return parseJsonLines(text, file, "expected an object {user, label, rank}", (line) => {
    const user = line.positiveInt("user");
    const label = line.positiveInt("label");
    const rank = line.rank("rank");
    const { ties } = line.fields;
    if (ties !== undefined && (typeof ties !== "number" || !Number.isInteger(ties) || ties < 0))
      line.fail(`field "ties": expected a non-negative integer, got ${JSON.stringify(ties)}`);
    if (seen.has(user)) line.fail(`user ${user} appears twice`);
    seen.add(user);
    return ties ? { user, label, rank, ties: ties as number } : { user, label, rank };
  });
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
