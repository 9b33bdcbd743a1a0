import { extname } from "node:path";
import { InputError } from "../../util/errors.js";
import { forEachRecord } from "../io/csv.js";
import { forEachLine, resolveInputPath, type TextEncoding } from "../io/lines.js";
import { InteractionLog, parseNumber, type RawData, RowContext } from "../raw.js";
import { locateColumns, parseTimestamp } from "./common.js";

/**
 * A generic interactions table plus an items table, each CSV, TSV or JSON lines (chosen by extension:
 * .csv / .tsv .tab / .jsonl .ndjson .json, after an optional .gz; or set `delimiter` / `jsonLines`).
 * Delimited files need a header row; fields may be quoted (RFC 4180). Column names are configurable.
 * Timestamps: numbers are taken as they are; date strings (ISO 8601) become seconds since the epoch.
 */
export interface GenericColumns {
  user?: string;
  item?: string;
  timestamp?: string;
  /** Optional column: absent from the file means no ratings. */
  rating?: string;
  /** Items table: the item id column (default: the `item` column's name). */
  itemId?: string;
  /** Items table: the title column. */
  title?: string;
}

export interface GenericPaths {
  interactions: string;
  items: string;
  columns?: GenericColumns;
  /** Field delimiter for both files, e.g. "," or "\t". Default from the extension. */
  delimiter?: string;
  encoding?: TextEncoding;
}

export const DEFAULT_GENERIC_COLUMNS: Required<GenericColumns> = {
  user: "user",
  item: "item",
  timestamp: "timestamp",
  rating: "rating",
  itemId: "item",
  title: "title",
};

type FileKind = { json: true } | { json: false; delimiter: string };

function kindOf(path: string, delimiter?: string): FileKind {
  if (delimiter !== undefined) return { json: false, delimiter };
  const ext = extname(path.replace(/\.gz$/i, "")).toLowerCase();
  if (ext === ".jsonl" || ext === ".ndjson" || ext === ".json") return { json: true };
  if (ext === ".tsv" || ext === ".tab") return { json: false, delimiter: "\t" };
  return { json: false, delimiter: "," };
}

/** Streams rows of a table as string maps by column index or key. */
async function forEachRow(
  file: string,
  kind: FileKind,
  wanted: Record<string, string | undefined>,
  required: string[],
  encoding: TextEncoding,
  ctx: RowContext,
  onRow: (get: (key: string) => string | undefined, lineNo: number) => void,
): Promise<void> {
  if (kind.json) {
    let checked = false;
    await forEachLine(
      file,
      (line, lineNo) => {
        if (line.trim() === "") return;
        let rec: unknown;
        try {
          rec = JSON.parse(line);
        } catch (err) {
          ctx.report.rowsRead++;
          return ctx.skip(file, lineNo, "invalid JSON", (err as Error).message);
        }
        if (typeof rec !== "object" || rec === null || Array.isArray(rec)) {
          ctx.report.rowsRead++;
          return ctx.skip(file, lineNo, "record is not an object");
        }
        const obj = rec as Record<string, unknown>;
        if (!checked) {
          checked = true;
          locateColumns(file, Object.keys(obj), wanted, required); // throws when columns are missing
        }
        onRow((key) => {
          const name = wanted[key];
          if (name === undefined) return undefined;
          const v = obj[name];
          return v === undefined || v === null ? undefined : String(v);
        }, lineNo);
      },
      encoding,
    );
    return;
  }
  let cols: Record<string, number> | undefined;
  await forEachRecord(
    file,
    kind.delimiter,
    (fields, lineNo, error) => {
      if (fields && fields.length === 1 && fields[0]!.trim() === "") return;
      if (!cols) {
        if (!fields) throw new InputError(`${file}:${lineNo}: malformed header: ${error}`);
        cols = locateColumns(file, fields, wanted, required);
        return;
      }
      if (!fields) {
        ctx.report.rowsRead++;
        return ctx.skip(file, lineNo, "malformed quoting", error);
      }
      const c = cols;
      onRow((key) => {
        const idx = c[key];
        return idx === undefined || idx < 0 ? undefined : fields[idx];
      }, lineNo);
    },
    encoding,
    { multiline: true },
  );
  if (!cols) throw new InputError(`${file}: empty file (expected a header row)`);
}

export async function readGeneric(paths: GenericPaths, ctx = new RowContext()): Promise<RawData> {
  // The items file's id column defaults to the interactions' item column (`--item-col iid` covers both).
  const given = Object.fromEntries(
    Object.entries(paths.columns ?? {}).filter(([, v]) => v !== undefined),
  ) as GenericColumns;
  const c = { ...DEFAULT_GENERIC_COLUMNS, ...(given.item ? { itemId: given.item } : {}), ...given };
  const encoding = paths.encoding ?? "utf8";
  const interFile = resolveInputPath(paths.interactions);
  const itemsFile = resolveInputPath(paths.items);
  ctx.addSource(interFile);
  ctx.addSource(itemsFile);
  const interactions = new InteractionLog(1 << 16);
  await forEachRow(
    interFile,
    kindOf(interFile, paths.delimiter),
    { user: c.user, item: c.item, timestamp: c.timestamp, rating: c.rating },
    ["user", "item", "timestamp"],
    encoding,
    ctx,
    (get, lineNo) => {
      ctx.report.rowsRead++;
      const user = get("user")?.trim();
      const item = get("item")?.trim();
      if (user === undefined || item === undefined) return ctx.skip(interFile, lineNo, "too few fields");
      if (!user || !item) return ctx.skip(interFile, lineNo, "empty user or item id");
      const tsText = get("timestamp");
      const ts = parseTimestamp(tsText);
      if (ts === undefined)
        return ctx.skip(interFile, lineNo, "invalid timestamp", JSON.stringify(tsText ?? ""));
      const ratingText = get("rating");
      let rating: number | undefined;
      if (ratingText !== undefined && ratingText.trim() !== "") {
        rating = parseNumber(ratingText);
        if (rating === undefined)
          return ctx.skip(interFile, lineNo, "non-numeric rating", JSON.stringify(ratingText));
      }
      interactions.add(user, item, ts, rating);
    },
  );
  const titles = new Map<string, string>();
  await forEachRow(
    itemsFile,
    kindOf(itemsFile, paths.delimiter),
    { item: c.itemId, title: c.title },
    ["item", "title"],
    encoding,
    ctx,
    (get, lineNo) => {
      const item = get("item")?.trim();
      const title = get("title");
      if (item === undefined || title === undefined) return ctx.skip(itemsFile, lineNo, "too few fields");
      if (!item) return ctx.skip(itemsFile, lineNo, "empty item id");
      if (!titles.has(item)) titles.set(item, title.trim());
    },
  );
  return { interactions, titles };
}
