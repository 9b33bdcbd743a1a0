import { InputError } from "../../util/errors.js";
import { forEachRecord } from "../io/csv.js";
import { forEachLine, resolveInputPath } from "../io/lines.js";
import { type PyValue, parsePythonLiteral } from "../pyliteral.js";
import { InteractionLog, parseNumber, type RawData, RowContext } from "../raw.js";

/**
 * Amazon review data (McAuley et al.):
 *   - 2014 ratings-only `ratings_<Category>.csv`: user,item,rating,timestamp, no header;
 *   - 2014 5-core `reviews_<Category>_5.json.gz`: JSON lines with reviewerID, asin, unixReviewTime, overall;
 *   - metadata `meta_<Category>.json(.gz)`: one record per line, either a Python dict literal (2014, parsed
 *     with our own literal parser, never eval) or JSON (2018). Either syntax is accepted on any line.
 * Titles follow the official LlamaRec code (datasets/beauty.py, games.py): a record counts when it has a
 * non-empty `title`; the key is `asin.strip()` and the title `title.strip()`, otherwise unchanged (no HTML
 * unescaping). Records whose title is empty after stripping are dropped as "no title".
 */
export interface AmazonPaths {
  /** ratings_<Category>.csv (user,item,rating,timestamp). Give this or `reviews`. */
  ratings?: string;
  /** reviews_<Category>_5.json.gz (JSON lines). Give this or `ratings`. */
  reviews?: string;
  /** meta_<Category>.json.gz (2014, Python literals) or meta_<Category>.json (2018, JSON lines). */
  meta: string;
}

export async function readAmazon(paths: AmazonPaths, ctx = new RowContext()): Promise<RawData> {
  if (!paths.ratings && !paths.reviews)
    throw new InputError("amazon: give `ratings` (csv) or `reviews` (5-core json)");
  if (!paths.meta) throw new InputError("amazon: `meta` (meta_<Category>.json[.gz]) is required for titles");
  const interactions = new InteractionLog(1 << 16);
  if (paths.ratings) await readAmazonRatingsCsv(resolveInputPath(paths.ratings), interactions, ctx);
  if (paths.reviews) await readAmazonReviews(resolveInputPath(paths.reviews), interactions, ctx);
  const titles = await readAmazonMeta(resolveInputPath(paths.meta), ctx);
  return { interactions, titles };
}

export async function readAmazonRatingsCsv(
  file: string,
  log: InteractionLog,
  ctx: RowContext,
): Promise<void> {
  ctx.addSource(file);
  await forEachRecord(file, ",", (fields, lineNo, error) => {
    if (fields && fields.length === 1 && fields[0]!.trim() === "") return;
    ctx.report.rowsRead++;
    if (!fields) return ctx.skip(file, lineNo, "malformed quoting", error);
    if (fields.length < 4) return ctx.skip(file, lineNo, "too few fields", `${fields.length} < 4`);
    const user = fields[0]!.trim();
    const item = fields[1]!.trim();
    if (!user || !item) return ctx.skip(file, lineNo, "empty user or item id");
    const rating = parseNumber(fields[2]);
    if (rating === undefined) {
      // a header line (e.g. "user,item,rating,timestamp") is not data: skip it silently on line 1
      if (lineNo === 1) {
        ctx.report.rowsRead--;
        return;
      }
      return ctx.skip(file, lineNo, "non-numeric rating", JSON.stringify(fields[2]));
    }
    const ts = parseNumber(fields[3]);
    if (ts === undefined) return ctx.skip(file, lineNo, "non-numeric timestamp", JSON.stringify(fields[3]));
    log.add(user, item, ts, rating);
  });
}

/** Parses one record line: JSON first when it looks like JSON, then Python literal syntax. */
function parseRecord(line: string, preferJson: boolean): PyValue {
  if (preferJson) {
    try {
      return JSON.parse(line) as PyValue;
    } catch {
      // fall through
    }
  }
  return parsePythonLiteral(line);
}

function isObject(v: PyValue): v is { [key: string]: PyValue } {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function idString(v: PyValue | undefined): string | undefined {
  if (typeof v === "string") return v.trim() || undefined;
  if (typeof v === "number") return String(v);
  return undefined;
}

export async function readAmazonReviews(file: string, log: InteractionLog, ctx: RowContext): Promise<void> {
  ctx.addSource(file);
  await forEachLine(file, (line, lineNo) => {
    if (line.trim() === "") return;
    ctx.report.rowsRead++;
    let rec: PyValue;
    try {
      rec = parseRecord(line, true);
    } catch (err) {
      return ctx.skip(file, lineNo, "unparseable record", (err as Error).message);
    }
    if (!isObject(rec)) return ctx.skip(file, lineNo, "record is not an object");
    const user = idString(rec.reviewerID);
    const item = idString(rec.asin);
    if (!user || !item) return ctx.skip(file, lineNo, "missing reviewerID or asin");
    const ts =
      typeof rec.unixReviewTime === "number"
        ? rec.unixReviewTime
        : parseNumber(String(rec.unixReviewTime ?? ""));
    if (ts === undefined || !Number.isFinite(ts))
      return ctx.skip(file, lineNo, "missing or non-numeric unixReviewTime");
    const rating = typeof rec.overall === "number" ? rec.overall : parseNumber(String(rec.overall ?? ""));
    log.add(user, item, ts, rating);
  });
}

export async function readAmazonMeta(file: string, ctx: RowContext): Promise<Map<string, string>> {
  ctx.addSource(file);
  const titles = new Map<string, string>();
  let preferJson = true;
  let decided = false;
  await forEachLine(file, (line, lineNo) => {
    if (line.trim() === "") return;
    let rec: PyValue;
    try {
      rec = parseRecord(line, preferJson);
    } catch (err) {
      return ctx.skip(file, lineNo, "unparseable metadata record", (err as Error).message);
    }
    if (!decided) {
      // Decide from the first record: if it was not JSON, skip the JSON attempt on later lines.
      decided = true;
      try {
        JSON.parse(line);
      } catch {
        preferJson = false;
      }
    }
    if (!isObject(rec)) return ctx.skip(file, lineNo, "metadata record is not an object");
    const asin = idString(rec.asin);
    if (!asin) return ctx.skip(file, lineNo, "metadata record without asin");
    const title = rec.title;
    if (typeof title !== "string" || title.trim() === "") return; // no title: the item is filtered later
    titles.set(asin, title.trim());
  });
  return titles;
}
