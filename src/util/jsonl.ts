/**
 * The line loop of every JSON-lines file llamarec reads back (retriever/candidates.jsonl, ranker/ranked.jsonl):
 * blank lines skipped, each other line parsed as one JSON object, and every error a RowError naming the file
 * and the line. The caller validates the object's fields.
 */
import { RowError } from "./errors.js";

/** One non-blank line, parsed to an object. */
export interface JsonLine {
  fields: Record<string, unknown>;
  /** Throws a RowError naming the file and this line. */
  fail(reason: string): never;
  /** The field as an integer >= 1; anything else fails the line. */
  positiveInt(name: string): number;
  /** The field as a finite number >= 1 (a rank, maybe fractional); anything else fails the line. */
  rank(name: string): number;
}

/** `notAnObject`: the reason given when a line is valid JSON but not an object. */
export function parseJsonLines<T>(
  text: string,
  file: string,
  notAnObject: string,
  parseLine: (line: JsonLine) => T,
): T[] {
  const out: T[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (line === "") return;
    const lineNo = i + 1;
    const fail = (reason: string): never => {
      throw new RowError(file, lineNo, reason);
    };
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      fail("not valid JSON");
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) fail(notAnObject);
    const fields = value as Record<string, unknown>;
    const positiveInt = (name: string): number => {
      const v = fields[name];
      if (typeof v !== "number" || !Number.isInteger(v) || v < 1)
        fail(`field "${name}": expected a positive integer, got ${JSON.stringify(v)}`);
      return v as number;
    };
    const rank = (name: string): number => {
      const v = fields[name];
      if (typeof v !== "number" || !Number.isFinite(v) || v < 1)
        fail(`field "${name}": expected a number >= 1, got ${JSON.stringify(v)}`);
      return v as number;
    };
    out.push(parseLine({ fields, fail, positiveInt, rank }));
  });
  return out;
}
