/** Option parsers shared by commands: numbers and lists fail with a message naming the flag. */
import { InvalidArgumentError } from "commander";

export function parseNumberArg(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n))
    throw new InvalidArgumentError(`expected a number, got "${value}"`);
  return n;
}

export function parseIntArg(value: string): number {
  const n = parseNumberArg(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`expected an integer, got "${value}"`);
  return n;
}

/** Counts that must be at least 1 (threads, orders, steps, …): 0 and negatives are usage errors. */
export function parsePositiveIntArg(value: string): number {
  const n = parseIntArg(value);
  if (n < 1) throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  return n;
}

/** "1,5,10" -> [1, 5, 10] */
export function parseIntListArg(value: string): number[] {
  return value
    .split(",")
    .filter((s) => s.trim() !== "")
    .map((s) => parseIntArg(s.trim()));
}
