/**
 * MovieLens title cleaning, following the official LlamaRec code (datasets/ml_100k.py):
 *   1. take the trailing "(year)" off,
 *   2. remove every other parenthesised part (alternative / original-language titles),
 *   3. move a trailing ", The" / ", A" / ", An" to the front,
 *   4. re-append " (year)".
 * "Godfather, The (1972)" -> "The Godfather (1972)";
 * "City of Lost Children, The (Cité des enfants perdus, La) (1995)" -> "The City of Lost Children (1995)".
 *
 * Where the official code is fragile we are deliberate instead (documented deviations):
 *   - it cuts the last 7 characters as the year; we match a real trailing "(1995)" or "(2006–2007)" after
 *     trimming, so titles without a year ("Babylon 5") or with a trailing space stay intact;
 *   - it tests `", a"` anywhere in the last 5 lower-cased characters; we require the whole trailing word
 *     (a / an / the, any case), so "Sam, Andy" is not rotated;
 *   - runs of whitespace left by removed parentheses are collapsed to one space.
 */
export function cleanMovieLensTitle(raw: string): string {
  let title = raw.trim();
  let year = "";
  const ym = /\s*\((\d{4}(?:\s*[-–]\s*(?:\d{4})?)?)\)$/.exec(title);
  if (ym) {
    year = ym[1]!;
    title = title.slice(0, ym.index);
  }
  title = title
    .replace(/\([^()]*?\)/g, "")
    .replace(/\s+/g, " ")
    .trim();
  const am = /^(.*), (the|a|an)$/i.exec(title);
  if (am && am[1]!.trim() !== "") title = `${am[2]} ${am[1]}`;
  if (title === "") return "";
  return year ? `${title} (${year})` : title;
}
