import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadDataset } from "../../src/data/index.js";
import { InputError, RowError } from "../../src/util/errors.js";
import { tempDir, writeFixture } from "./helpers.js";

describe("loadDataset on the bundled ml-latest-small", () => {
  it("gives the paper's 610 users, 3,650 items, 90,274 interactions, and caches", async () => {
    const cacheDir = tempDir();
    const cold = await loadDataset({ name: "ml-latest-small" }, { cacheDir });
    expect(cold.stats.users).toBe(610);
    expect(cold.stats.items).toBe(3650);
    expect(cold.stats.interactions).toBe(90274);
    expect(cold.stats.avgLength).toBeCloseTo(147.99, 2);
    expect(cold.report.cacheHit).toBe(false);
    expect(cold.report.skippedRows).toBe(0);
    expect(cold.report.preprocess.stages[0]).toEqual({
      stage: "read",
      interactions: 100836,
      users: 610,
      items: 9724,
    });
    const d = cold.dataset;
    expect(d.name).toBe("ml-latest-small");
    expect(d.numUsers).toBe(610);
    expect(d.titles[1]).toBe("Toy Story (1995)");
    expect(d.titles).toContain("The Godfather (1972)");
    expect(d.titles).toContain("Léon: The Professional (1994)"); // UTF-8, not Latin-1 mojibake
    let total = 0;
    for (let u = 1; u <= d.numUsers; u++) {
      total += d.train[u]!.length + 2;
      expect(d.train[u]!.length).toBeGreaterThanOrEqual(3);
    }
    expect(total).toBe(90274);

    const warm = await loadDataset({ name: "ml-latest-small" }, { cacheDir });
    expect(warm.report.cacheHit).toBe(true);
    expect(warm.report.elapsedMs).toBeLessThan(1000);
    expect(warm.dataset).toEqual(cold.dataset);
    expect(warm.stats).toEqual(cold.stats);
    expect(readdirSync(cacheDir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    console.log(
      `ml-latest-small: cold ${cold.report.elapsedMs.toFixed(0)} ms, warm ${warm.report.elapsedMs.toFixed(1)} ms`,
    );

    // other options -> another key
    const other = await loadDataset({ name: "ml-latest-small" }, { cacheDir, minRating: 4 });
    expect(other.report.cacheHit).toBe(false);
    expect(other.report.cacheKey).not.toBe(cold.report.cacheKey);
    expect(other.stats.interactions).toBeLessThan(90274);
  });

  it("rejects an unknown load option by name", async () => {
    const typo = { minUserCounts: 3 } as unknown as { minUserCount: number };
    await expect(loadDataset({ name: "ml-latest-small" }, typo)).rejects.toThrow(
      /dataset load options: unknown option "minUserCounts" \(known: minRating, minUserCount/,
    );
  });

  it("rejects unknown bundled names", async () => {
    await expect(loadDataset({ name: "nope" as "ml-latest-small" }, { noCache: true })).rejects.toThrow(
      InputError,
    );
  });
});

function genericFixture(dir: string, extraRow = ""): { interactions: string; items: string } {
  const lines = ["user,item,timestamp"];
  for (let u = 1; u <= 6; u++) for (let i = 1; i <= 6; i++) lines.push(`${u},${i},${u * 10 + i}`);
  const interactions = writeFixture(dir, "inter.csv", `${lines.join("\n")}\n${extraRow}`);
  const items = writeFixture(
    dir,
    "items.csv",
    `item,title\n${[1, 2, 3, 4, 5, 6].map((i) => `${i},Item ${i}`).join("\n")}\n`,
  );
  return { interactions, items };
}

describe("cache", () => {
  it("hits, misses on changed content, and ignores a corrupt entry", async () => {
    const dir = tempDir();
    const cacheDir = join(dir, "cache");
    const files = genericFixture(dir);
    const a = await loadDataset({ format: "generic", ...files }, { cacheDir });
    expect(a.report.cacheHit).toBe(false);
    const b = await loadDataset({ format: "generic", ...files }, { cacheDir });
    expect(b.report.cacheHit).toBe(true);
    expect(b.dataset).toEqual(a.dataset);
    // edit a source file: new key, fresh read
    writeFileSync(files.items, "item,title\n1,I1\n2,I2\n3,I3\n4,I4\n5,I5\n6,I6\n");
    const c = await loadDataset({ format: "generic", ...files }, { cacheDir });
    expect(c.report.cacheHit).toBe(false);
    expect(c.dataset.titles[1]).toBe("I1");
    // corrupt the entry: treated as a miss and rewritten
    writeFileSync(c.report.cachePath!, "garbage");
    const d = await loadDataset({ format: "generic", ...files }, { cacheDir });
    expect(d.report.cacheHit).toBe(false);
    expect(d.dataset).toEqual(c.dataset);
    const e = await loadDataset({ format: "generic", ...files }, { cacheDir });
    expect(e.report.cacheHit).toBe(true);
    // noCache neither reads nor writes
    const f = await loadDataset({ format: "generic", ...files }, { noCache: true });
    expect(f.report.cacheHit).toBe(false);
    expect(f.report.cacheKey).toBeNull();
  });

  it("reports skipped rows by default and throws RowError when strict", async () => {
    const dir = tempDir();
    const files = genericFixture(dir, "7,1,notatime\n");
    const r = await loadDataset({ format: "generic", ...files }, { noCache: true });
    expect(r.report.skippedRows).toBe(1);
    expect(r.report.skippedByReason).toEqual({ "invalid timestamp": 1 });
    expect(r.report.skippedExamples[0]).toBe(`${files.interactions}:38: invalid timestamp: "notatime"`);
    const err = await loadDataset({ format: "generic", ...files }, { noCache: true, strict: true }).catch(
      (x) => x,
    );
    expect(err).toBeInstanceOf(RowError);
    expect(err.message).toBe(`${files.interactions}:38: invalid timestamp: "notatime"`);
  });

  it("reports which filter emptied the dataset", async () => {
    const dir = tempDir();
    const interactions = writeFixture(dir, "i.csv", "user,item,timestamp\n1,1,1\n1,2,2\n2,1,3\n");
    const items = writeFixture(dir, "t.csv", "item,title\n1,A\n2,B\n");
    await expect(loadDataset({ format: "generic", interactions, items }, { noCache: true })).rejects.toThrow(
      /after 5-core filtering .*no users remain \(before: 2 users, 2 items, 3 interactions\)/,
    );
  });
});
