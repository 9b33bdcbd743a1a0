/**
 * The rank of one held-out item in a full ranking over every item (never sampled negatives).
 *
 * Ties: "pessimistic" puts every other item with the same score above the label, so a model that
 * outputs constant scores ranks the label last and scores ~0 on every metric. "expected" puts half of
 * them above (the mean position under random tie-breaking), which can give a fractional rank.
 * NaN scores throw: they mean a diverged model, and silently ranking them anywhere would report a
 * number for a broken run. ±Infinity are valid scores (masks use them).
 */
export type TieMode = "pessimistic" | "expected";

export const TIE_MODES: readonly TieMode[] = ["pessimistic", "expected"];

export class NaNScoreError extends Error {
  override name = "NaNScoreError";
  constructor(readonly item: number) {
    super(`score of item ${item} is NaN (diverged model?); refusing to rank`);
  }
}

/** Where the label stands: items scoring strictly higher, and other items scoring exactly the same. */
export interface LabelStanding {
  higher: number;
  ties: number;
}

/**
 * scores: length numItems + 1, index 0 = padding (never counted).
 * exclude: items that never count (the user's history); the label itself is never excluded, because
 * an excluded label could only ever be a miss (the official code masks it too when a user re-consumes
 * an item; we rank it instead).
 */
export function rankOfLabel(
  scores: Float32Array | Float64Array,
  label: number,
  exclude: Iterable<number> = [],
  tie: TieMode = "pessimistic",
): number {
  return rankFromStanding(labelStanding(scores, label, exclude), tie);
}

export function rankFromStanding({ higher, ties }: LabelStanding, tie: TieMode): number {
  return 1 + higher + (tie === "pessimistic" ? ties : ties / 2);
}

/** The counts behind rankOfLabel (same padding, exclusion and NaN rules). */
export function labelStanding(
  scores: Float32Array | Float64Array,
  label: number,
  exclude: Iterable<number> = [],
): LabelStanding {
  const n = scores.length;
  if (!Number.isInteger(label) || label < 1 || label >= n) {
    throw new RangeError(`label ${label} is outside items 1..${n - 1}`);
  }
  const target = scores[label]!;
  if (Number.isNaN(target)) throw new NaNScoreError(label);
  let higher = 0;
  let equal = 0;
  for (let i = 1; i < n; i++) {
    const s = scores[i]!;
    if (s > target) higher++;
    else if (s === target) equal++;
    else if (Number.isNaN(s)) throw new NaNScoreError(i);
  }
  equal--; // the label itself
  // Subtract excluded items instead of testing membership per item: histories are short, items many.
  const seen = exclude instanceof Set ? null : new Set<number>();
  for (const item of exclude) {
    if (item === label || item < 1 || item >= n) continue;
    if (seen) {
      if (seen.has(item)) continue;
      seen.add(item);
    }
    const s = scores[item]!;
    if (s > target) higher--;
    else if (s === target) equal--;
  }
  return { higher, ties: equal };
}
