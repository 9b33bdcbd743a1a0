import { describe, expect, it } from "vitest";
import { type InteractionLog, RowContext } from "../../src/data/raw.js";
import { readAmazon } from "../../src/data/readers/amazon.js";
import { readGeneric } from "../../src/data/readers/generic.js";
import { readMovieLens } from "../../src/data/readers/movielens.js";
import { readRecBole } from "../../src/data/readers/recbole.js";
import { InputError, RowError } from "../../src/util/errors.js";
import { tempDir, writeFixture } from "./helpers.js";

function rows(log: unknown): unknown[] {
  return [...(log as InteractionLog)];
}

describe("MovieLens reader", () => {
  it("reads ratings.csv + movies.csv (gz, quoted titles, UTF-8) and cleans titles", async () => {
    const dir = tempDir();
    writeFixture(
      dir,
      "ratings.csv.gz",
      "userId,movieId,rating,timestamp\n1,10,4.0,100\n1,11,3.5,90\n2,10,5,80\n",
    );
    writeFixture(
      dir,
      "movies.csv",
      'movieId,title,genres\n10,"Godfather, The (1972)",Crime|Drama\n11,"Misérables, Les (1995)",Drama\n',
    );
    const ctx = new RowContext();
    const raw = await readMovieLens({ dir }, ctx);
    expect(rows(raw.interactions)).toEqual([
      { user: "1", item: "10", timestamp: 100, rating: 4 },
      { user: "1", item: "11", timestamp: 90, rating: 3.5 },
      { user: "2", item: "10", timestamp: 80, rating: 5 },
    ]);
    expect(raw.titles.get("10")).toBe("The Godfather (1972)");
    expect(raw.titles.get("11")).toBe("Misérables, Les (1995)");
    expect(ctx.report.sourceFiles).toHaveLength(2);
  });

  it("skips and counts malformed rows, naming file and line; strict throws RowError", async () => {
    const dir = tempDir();
    const r = writeFixture(
      dir,
      "ratings.csv",
      "userId,movieId,rating,timestamp\n1,10,4.0,100\n1,10,abc,100\n1,10\n,10,4,5\n2,10,5,80\n",
    );
    writeFixture(dir, "movies.csv", "movieId,title,genres\n10,Heat (1995),Action\n");
    const ctx = new RowContext();
    const raw = await readMovieLens({ dir }, ctx);
    expect((raw.interactions as InteractionLog).size).toBe(2);
    expect(ctx.report.skippedRows).toBe(3);
    expect(ctx.report.skippedByReason).toEqual({
      "non-numeric rating": 1,
      "too few fields": 1,
      "empty user or item id": 1,
    });
    expect(ctx.report.skippedExamples[0]).toBe(`${r}:3: non-numeric rating: "abc"`);
    const err = await readMovieLens({ dir }, new RowContext(true)).catch((e) => e);
    expect(err).toBeInstanceOf(RowError);
    expect((err as RowError).file).toBe(r);
    expect((err as RowError).line).toBe(3);
  });

  it("lists found and expected columns when a column is missing", async () => {
    const dir = tempDir();
    writeFixture(dir, "ratings.csv", "user,movieId,rating,timestamp\n1,10,4,1\n");
    writeFixture(dir, "movies.csv", "movieId,title\n10,X (1999)\n");
    const err = await readMovieLens({ dir }).catch((e) => e);
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toMatch(/missing column "userId"/);
    expect(err.message).toMatch(/found columns: "user", "movieId", "rating", "timestamp"/);
    expect(err.message).toMatch(/expected: "userId", "movieId", "rating", "timestamp"/);
  });

  it("reads ml-100k u.data (tab) + u.item (|, Latin-1)", async () => {
    const dir = tempDir();
    writeFixture(dir, "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n");
    const item = Buffer.concat([
      Buffer.from("242|Kolya (1996)|24-Jan-1997||http://x|0|0\n", "latin1"),
      Buffer.from("302|L.A. Confidential (1997)|01-Jan-1997||http://x|0|0\n", "latin1"),
      Buffer.from([...Buffer.from("303|Caf"), 0xe9, ...Buffer.from(", The (1990)|01-Jan-1990||x|0\n")]),
    ]);
    writeFixture(dir, "u.item", item);
    const raw = await readMovieLens({ dir });
    expect(rows(raw.interactions)).toEqual([
      { user: "196", item: "242", timestamp: 881250949, rating: 3 },
      { user: "186", item: "302", timestamp: 891717742, rating: 3 },
    ]);
    expect(raw.titles.get("242")).toBe("Kolya (1996)");
    expect(raw.titles.get("303")).toBe("The Café (1990)");
  });

  it("reads ml-1m ratings.dat + movies.dat (::, Latin-1, gz)", async () => {
    const dir = tempDir();
    writeFixture(dir, "ratings.dat.gz", "1::1193::5::978300760\n1::661::3::978302109\n");
    writeFixture(
      dir,
      "movies.dat",
      Buffer.from(
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n661::James and the Giant Peach (1996)::x\n",
        "latin1",
      ),
    );
    const raw = await readMovieLens({ dir });
    expect(rows(raw.interactions)).toHaveLength(2);
    expect(raw.titles.get("661")).toBe("James and the Giant Peach (1996)");
  });
});

describe("Amazon reader", () => {
  it("reads ratings_<Cat>.csv + 2014 python-literal meta (gz), titles stripped as the official code", async () => {
    const dir = tempDir();
    const ratings = writeFixture(
      dir,
      "ratings_Beauty.csv",
      "A1,B001,5.0,1300000000\nA2,B002,4.0,1300000001\nbad\n",
    );
    const meta = writeFixture(
      dir,
      "meta_Beauty.json.gz",
      [
        "{'asin': 'B001', 'title': '  Shampoo \\'Deluxe\\'  ', 'salesRank': {'Beauty': 1}, 'categories': [['Beauty']]}",
        "{'asin': 'B002', 'related': {'also_bought': ['B001']}}",
        "{'asin': 'B003', 'title': \"Caf\\xe9 Cream\", 'price': 3.5, 'x': True}",
        "{'asin': 'B004', 'title': ''}",
        "not a literal",
      ].join("\n"),
    );
    const ctx = new RowContext();
    const raw = await readAmazon({ ratings, meta }, ctx);
    expect(rows(raw.interactions)).toEqual([
      { user: "A1", item: "B001", timestamp: 1300000000, rating: 5 },
      { user: "A2", item: "B002", timestamp: 1300000001, rating: 4 },
    ]);
    expect([...raw.titles]).toEqual([
      ["B001", "Shampoo 'Deluxe'"],
      ["B003", "Café Cream"],
    ]);
    expect(ctx.report.skippedByReason).toEqual({ "too few fields": 1, "unparseable metadata record": 1 });
  });

  it("reads 5-core reviews JSON lines + 2018 JSON meta", async () => {
    const dir = tempDir();
    const reviews = writeFixture(
      dir,
      "reviews_Video_Games_5.json.gz",
      [
        JSON.stringify({
          reviewerID: "U1",
          asin: "G1",
          unixReviewTime: 10,
          overall: 5.0,
          reviewText: "a, b",
        }),
        JSON.stringify({ reviewerID: "U1", asin: "G2", unixReviewTime: 11, overall: 3.0 }),
        JSON.stringify({ reviewerID: "U2", asin: "G2" }),
      ].join("\n"),
    );
    const meta = writeFixture(
      dir,
      "meta_Video_Games.json",
      [
        JSON.stringify({ asin: "G1", title: "Zelda", also_buy: [] }),
        JSON.stringify({ asin: "G2", title: "Mario " }),
      ].join("\n"),
    );
    const ctx = new RowContext();
    const raw = await readAmazon({ reviews, meta }, ctx);
    expect(rows(raw.interactions)).toEqual([
      { user: "U1", item: "G1", timestamp: 10, rating: 5 },
      { user: "U1", item: "G2", timestamp: 11, rating: 3 },
    ]);
    expect(raw.titles.get("G2")).toBe("Mario");
    expect(ctx.report.skippedByReason).toEqual({ "missing or non-numeric unixReviewTime": 1 });
  });
});

describe("generic reader", () => {
  it("reads CSV with quoted fields and default columns", async () => {
    const dir = tempDir();
    const interactions = writeFixture(
      dir,
      "inter.csv",
      'user,item,timestamp,rating\n"u,1",i1,5,\nu2,i1,2016-01-01T00:00:00Z,4\n',
    );
    const items = writeFixture(dir, "items.csv", 'item,title\ni1,"A ""quoted"", title"\n');
    const raw = await readGeneric({ interactions, items });
    expect(rows(raw.interactions)).toEqual([
      { user: "u,1", item: "i1", timestamp: 5 },
      { user: "u2", item: "i1", timestamp: 1451606400, rating: 4 },
    ]);
    expect(raw.titles.get("i1")).toBe('A "quoted", title');
  });

  it("reads TSV and JSON lines with configured column names", async () => {
    const dir = tempDir();
    const tsv = writeFixture(dir, "log.tsv.gz", "uid\tiid\tts\nA\tX\t1\nA\tY\tnope\n");
    const jsonl = writeFixture(
      dir,
      "items.jsonl",
      '{"iid": "X", "name": "Thing X"}\n{"iid": 7, "name": "Seven"}\nbroken\n',
    );
    const ctx = new RowContext();
    const raw = await readGeneric(
      {
        interactions: tsv,
        items: jsonl,
        columns: { user: "uid", item: "iid", timestamp: "ts", itemId: "iid", title: "name" },
      },
      ctx,
    );
    expect(rows(raw.interactions)).toEqual([{ user: "A", item: "X", timestamp: 1 }]);
    expect([...raw.titles]).toEqual([
      ["X", "Thing X"],
      ["7", "Seven"],
    ]);
    expect(ctx.report.skippedByReason).toEqual({ "invalid timestamp": 1, "invalid JSON": 1 });
  });

  it("throws InputError for missing columns in CSV and JSON lines", async () => {
    const dir = tempDir();
    const interactions = writeFixture(dir, "i.csv", "user,item\n1,2\n");
    const items = writeFixture(dir, "t.jsonl", '{"item": "2"}\n');
    await expect(readGeneric({ interactions, items })).rejects.toThrow(
      /missing column "timestamp".*found columns: "user", "item"/,
    );
    const inter2 = writeFixture(dir, "i2.csv", "user,item,timestamp\n1,2,3\n");
    await expect(readGeneric({ interactions: inter2, items })).rejects.toThrow(/missing column "title"/);
  });
});

describe("RecBole reader", () => {
  it("reads .inter/.item with field:type headers", async () => {
    const dir = tempDir();
    const inter = writeFixture(
      dir,
      "ml.inter",
      "user_id:token\titem_id:token\trating:float\ttimestamp:float\n196\t242\t3\t881250949\n186\t302\t3\n",
    );
    const item = writeFixture(
      dir,
      "ml.item",
      "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n242\tKolya\t1996\tComedy\n",
    );
    const ctx = new RowContext();
    const raw = await readRecBole({ inter, item }, ctx);
    expect(rows(raw.interactions)).toEqual([{ user: "196", item: "242", timestamp: 881250949, rating: 3 }]);
    expect(raw.titles.get("242")).toBe("Kolya");
    expect(ctx.report.skippedRows).toBe(1);
    expect(ctx.report.skippedExamples[0]).toBe(`${inter}:3: too few fields: 3 < 4`);
  });
});
