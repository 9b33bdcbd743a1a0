import { InputError } from "../../util/errors.js";
import { forEachLine, resolveInputPath } from "../io/lines.js";
import { InteractionLog, parseNumber, type RawData, RowContext } from "../raw.js";
import { locateColumns } from "./common.js";

/**
 * RecBole atomic files: tab-separated `.inter` and `.item` with a `name:type` header, e.g.
 *   user_id:token  item_id:token  rating:float  timestamp:float
 *   item_id:token  movie_title:token_seq  release_year:token  class:token_seq
 * Field names are matched without their `:type` suffix. The title field defaults to the first of
 * title, movie_title, item_title, name, product_name present in the .item header.
 */
export interface RecBoleColumns {
  user?: string;
  item?: string;
  timestamp?: string;
  rating?: string;
  title?: string;
}

export interface RecBolePaths {
  inter: string;
  item: string;
  columns?: RecBoleColumns;
}

const TITLE_CANDIDATES = ["title", "movie_title", "item_title", "name", "product_name"];

function headerNames(line: string): string[] {
  return line.split("\t").map((h) => h.trim().replace(/:[A-Za-z_]+$/, ""));
}

export async function readRecBole(paths: RecBolePaths, ctx = new RowContext()): Promise<RawData> {
  const cols = paths.columns ?? {};
  const interFile = resolveInputPath(paths.inter);
  const itemFile = resolveInputPath(paths.item);
  ctx.addSource(interFile);
  ctx.addSource(itemFile);
  const interactions = new InteractionLog(1 << 16);
  let idx: Record<"user" | "item" | "timestamp" | "rating", number> | undefined;
  let width = 0;
  await forEachLine(interFile, (line, lineNo) => {
    if (line.trim() === "") return;
    if (!idx) {
      idx = locateColumns(
        interFile,
        headerNames(line),
        {
          user: cols.user ?? "user_id",
          item: cols.item ?? "item_id",
          timestamp: cols.timestamp ?? "timestamp",
          rating: cols.rating ?? "rating",
        },
        ["user", "item", "timestamp"],
      );
      width = Math.max(idx.user, idx.item, idx.timestamp) + 1;
      return;
    }
    ctx.report.rowsRead++;
    const f = line.split("\t");
    if (f.length < width) return ctx.skip(interFile, lineNo, "too few fields", `${f.length} < ${width}`);
    const user = f[idx.user]!.trim();
    const item = f[idx.item]!.trim();
    if (!user || !item) return ctx.skip(interFile, lineNo, "empty user or item id");
    const ts = parseNumber(f[idx.timestamp]);
    if (ts === undefined)
      return ctx.skip(interFile, lineNo, "non-numeric timestamp", JSON.stringify(f[idx.timestamp]));
    let rating: number | undefined;
    const rt = idx.rating >= 0 ? f[idx.rating] : undefined;
    if (rt !== undefined && rt.trim() !== "") {
      rating = parseNumber(rt);
      if (rating === undefined) return ctx.skip(interFile, lineNo, "non-numeric rating", JSON.stringify(rt));
    }
    interactions.add(user, item, ts, rating);
  });
  if (!idx)
    throw new InputError(`${interFile}: empty file (expected a header like user_id:token item_id:token ...)`);

  const titles = new Map<string, string>();
  let tidx: Record<"item" | "title", number> | undefined;
  await forEachLine(itemFile, (line, lineNo) => {
    if (line.trim() === "") return;
    if (!tidx) {
      const names = headerNames(line);
      const titleName = cols.title ?? TITLE_CANDIDATES.find((c) => names.includes(c)) ?? "title";
      tidx = locateColumns(itemFile, names, { item: cols.item ?? "item_id", title: titleName }, [
        "item",
        "title",
      ]);
      return;
    }
    const f = line.split("\t");
    const item = f[tidx.item]?.trim();
    const title = f[tidx.title];
    if (item === undefined || title === undefined) return ctx.skip(itemFile, lineNo, "too few fields");
    if (!item) return ctx.skip(itemFile, lineNo, "empty item id");
    if (!titles.has(item)) titles.set(item, title.trim());
  });
  if (!tidx)
    throw new InputError(`${itemFile}: empty file (expected a header like item_id:token title:token_seq)`);
  return { interactions, titles };
}
