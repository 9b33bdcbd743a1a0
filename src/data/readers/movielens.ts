import { existsSync } from "node:fs";
import { join } from "node:path";
import { InputError } from "../../util/errors.js";
import { forEachRecord } from "../io/csv.js";
import { forEachLine, resolveInputPath, type TextEncoding } from "../io/lines.js";
import { InteractionLog, parseNumber, type RawData, RowContext } from "../raw.js";
import { cleanMovieLensTitle } from "../titles.js";
import { locateColumns, plainName } from "./common.js";

/**
 * MovieLens, three layouts:
 *   - "csv": ratings.csv (userId,movieId,rating,timestamp) + movies.csv (movieId,title,genres), as in
 *     ml-latest-small / ml-latest / ml-20m / ml-25m; RFC 4180 quoting; decoded as UTF-8 (the official
 *     LlamaRec code reads movies.csv as Latin-1, which garbles accented titles; we do not);
 *   - "100k": classic ml-100k u.data (tab: user item rating timestamp) + u.item ("|", Latin-1);
 *   - "1m": ml-1m ratings.dat + movies.dat ("::", Latin-1).
 * Titles are cleaned with cleanMovieLensTitle. Every file may be gzip-compressed (name.gz or not).
 */
export type MovieLensVariant = "csv" | "100k" | "1m";

export interface MovieLensPaths {
  /** A folder holding ratings.csv+movies.csv, u.data+u.item, or ratings.dat+movies.dat (optionally .gz). */
  dir?: string;
  /** The ratings file (overrides dir). */
  ratings?: string;
  /** The movies / items file (overrides dir). */
  movies?: string;
  /** Detected from the file names when omitted. */
  variant?: MovieLensVariant;
}

const LAYOUTS: Record<MovieLensVariant, { ratings: string; movies: string }> = {
  csv: { ratings: "ratings.csv", movies: "movies.csv" },
  "100k": { ratings: "u.data", movies: "u.item" },
  "1m": { ratings: "ratings.dat", movies: "movies.dat" },
};

function exists(path: string): boolean {
  return existsSync(path) || existsSync(`${path}.gz`);
}

/** Resolves the two files and the layout. */
export function resolveMovieLensPaths(paths: MovieLensPaths): {
  ratings: string;
  movies: string;
  variant: MovieLensVariant;
} {
  let variant = paths.variant;
  if (!variant && paths.ratings) {
    const n = plainName(paths.ratings);
    variant = n === "u.data" ? "100k" : n.endsWith(".dat") ? "1m" : "csv";
  }
  if (!variant && paths.dir) {
    for (const v of ["csv", "100k", "1m"] as const) {
      if (exists(join(paths.dir, LAYOUTS[v].ratings))) {
        variant = v;
        break;
      }
    }
    if (!variant) {
      throw new InputError(
        `${paths.dir}: no MovieLens ratings file found (looked for ratings.csv, u.data, ratings.dat, optionally .gz)`,
      );
    }
  }
  if (!variant) throw new InputError("movielens: give `dir` or `ratings` and `movies`");
  const ratings = paths.ratings ?? (paths.dir ? join(paths.dir, LAYOUTS[variant].ratings) : undefined);
  const movies = paths.movies ?? (paths.dir ? join(paths.dir, LAYOUTS[variant].movies) : undefined);
  if (!ratings || !movies)
    throw new InputError("movielens: both a ratings file and a movies file are needed");
  return { ratings: resolveInputPath(ratings), movies: resolveInputPath(movies), variant };
}

export async function readMovieLens(paths: MovieLensPaths, ctx = new RowContext()): Promise<RawData> {
  const { ratings, movies, variant } = resolveMovieLensPaths(paths);
  ctx.addSource(ratings);
  ctx.addSource(movies);
  const interactions = new InteractionLog(1 << 16);
  const titles = new Map<string, string>();
  if (variant === "csv") {
    await readCsvRatings(ratings, interactions, ctx);
    await readCsvMovies(movies, titles, ctx);
  } else {
    const sep = variant === "100k" ? "\t" : "::";
    await readSeparatedRatings(ratings, sep, interactions, ctx);
    await readSeparatedMovies(movies, variant === "100k" ? "|" : "::", "latin1", titles, ctx);
  }
  return { interactions, titles };
}

function addRating(
  file: string,
  lineNo: number,
  user: string | undefined,
  item: string | undefined,
  ratingText: string | undefined,
  tsText: string | undefined,
  log: InteractionLog,
  ctx: RowContext,
): void {
  ctx.report.rowsRead++;
  const u = user?.trim();
  const i = item?.trim();
  const rating = parseNumber(ratingText);
  const ts = parseNumber(tsText);
  if (!u || !i) ctx.skip(file, lineNo, "empty user or item id");
  else if (rating === undefined)
    ctx.skip(file, lineNo, "non-numeric rating", JSON.stringify(ratingText ?? ""));
  else if (ts === undefined) ctx.skip(file, lineNo, "non-numeric timestamp", JSON.stringify(tsText ?? ""));
  else log.add(u, i, ts, rating);
}

async function readCsvRatings(file: string, log: InteractionLog, ctx: RowContext): Promise<void> {
  let cols: Record<"user" | "item" | "rating" | "timestamp", number> | undefined;
  let width = 0;
  await forEachRecord(file, ",", (fields, lineNo, error) => {
    if (fields && fields.length === 1 && fields[0]!.trim() === "") return;
    if (!cols) {
      if (!fields) throw new InputError(`${file}:${lineNo}: malformed header: ${error}`);
      cols = locateColumns(
        file,
        fields,
        { user: "userId", item: "movieId", rating: "rating", timestamp: "timestamp" },
        ["user", "item", "rating", "timestamp"],
      );
      width = Math.max(...Object.values<number>(cols)) + 1;
      return;
    }
    if (!fields) {
      ctx.report.rowsRead++;
      return ctx.skip(file, lineNo, "malformed quoting", error);
    }
    if (fields.length < width) {
      ctx.report.rowsRead++;
      return ctx.skip(file, lineNo, "too few fields", `${fields.length} < ${width}`);
    }
    addRating(
      file,
      lineNo,
      fields[cols.user],
      fields[cols.item],
      fields[cols.rating],
      fields[cols.timestamp],
      log,
      ctx,
    );
  });
  if (!cols) throw new InputError(`${file}: empty file (expected a header userId,movieId,rating,timestamp)`);
}

async function readCsvMovies(file: string, titles: Map<string, string>, ctx: RowContext): Promise<void> {
  let cols: Record<"item" | "title", number> | undefined;
  await forEachRecord(file, ",", (fields, lineNo, error) => {
    if (fields && fields.length === 1 && fields[0]!.trim() === "") return;
    if (!cols) {
      if (!fields) throw new InputError(`${file}:${lineNo}: malformed header: ${error}`);
      cols = locateColumns(file, fields, { item: "movieId", title: "title" }, ["item", "title"]);
      return;
    }
    if (!fields) return ctx.skip(file, lineNo, "malformed quoting", error);
    const id = fields[cols.item]?.trim();
    const title = fields[cols.title];
    if (!id) return ctx.skip(file, lineNo, "empty item id");
    if (title === undefined) return ctx.skip(file, lineNo, "too few fields");
    if (!titles.has(id)) titles.set(id, cleanMovieLensTitle(title));
  });
  if (!cols) throw new InputError(`${file}: empty file (expected a header movieId,title,genres)`);
}

async function readSeparatedRatings(
  file: string,
  sep: string,
  log: InteractionLog,
  ctx: RowContext,
): Promise<void> {
  await forEachLine(file, (line, lineNo) => {
    if (line.trim() === "") return;
    const f = sep === "\t" ? line.trim().split(/\s+/) : line.split(sep);
    if (f.length < 4) {
      ctx.report.rowsRead++;
      return ctx.skip(file, lineNo, "too few fields", `${f.length} < 4`);
    }
    addRating(file, lineNo, f[0], f[1], f[2], f[3], log, ctx);
  });
}

async function readSeparatedMovies(
  file: string,
  sep: string,
  encoding: TextEncoding,
  titles: Map<string, string>,
  ctx: RowContext,
): Promise<void> {
  await forEachLine(
    file,
    (line, lineNo) => {
      if (line.trim() === "") return;
      const f = line.split(sep);
      if (f.length < 2) return ctx.skip(file, lineNo, "too few fields", `${f.length} < 2`);
      const id = f[0]!.trim();
      if (!id) return ctx.skip(file, lineNo, "empty item id");
      if (!titles.has(id)) titles.set(id, cleanMovieLensTitle(f[1]!));
    },
    encoding,
  );
}
