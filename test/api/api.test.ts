/**
 * The library's task-level helpers against the product paths they stand for: retrieveCandidates must give
 * the candidates `trainRetriever` wrote to candidates.jsonl, and Ranker.rank the order `rankCandidates`
 * (what `llamarec rank` and the evaluation use) gives the same user.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  bundledTinyGguf,
  InputError,
  loadRetriever,
  openRanker,
  rankCandidates,
  readCandidates,
  retrieveCandidates,
  runPaths,
  trainRetriever,
} from "../../src/index.js";
import { skewedDataset } from "../retrievers/fixtures.js";

const tmp = mkdtempSync(join(tmpdir(), "llamarec-api-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const dataset = skewedDataset(40, 60, 8, 30, 3);

describe("retrieveCandidates", () => {
  it("returns, for every test user's history, the candidates and scores the trained run wrote", async () => {
    const runDir = join(tmp, "lru");
    await trainRetriever({
      dataset,
      model: "lru",
      modelOptions: { hiddenDim: 16, numBlocks: 1 },
      runDir,
      training: { batchSize: 8, maxLen: 12, maxIterations: 30, valEvery: 15, evalBatchSize: 16 },
    });
    const retriever = await loadRetriever(runDir);
    expect(retriever.maxLen).toBe(12);
    const records = (await readCandidates(runPaths(runDir).retriever.candidates)).filter(
      (r) => r.split === "test",
    );
    expect(records.length).toBe(40);
    for (const r of records) {
      const history = [...dataset.train[r.user]!, dataset.val[r.user]!];
      const got = retrieveCandidates(retriever, history, { k: 20 });
      expect(got.items).toEqual(r.candidates);
      expect(got.scores.map((s) => Math.fround(s))).toEqual(r.scores.map((s) => Math.fround(s)));
      // History items never come back.
      for (const item of got.items) expect(history).not.toContain(item);
    }
    // Different histories give different lists (the test is not passing on a constant).
    expect(new Set(records.map((r) => r.candidates.join(","))).size).toBeGreaterThan(1);
    expect(() => retrieveCandidates(retriever, [1, 61])).toThrow(InputError);
  }, 120_000);
});

describe("openRanker", () => {
  it("ranks one history's candidates exactly as rankCandidates ranks that user", async () => {
    const ranker = await openRanker({ backend: "engine", model: bundledTinyGguf() });
    try {
      for (const user of [3, 7]) {
        const history = [...dataset.train[user]!, dataset.val[user]!];
        const label = dataset.test[user]!;
        const candidates = [label, ...Array.from({ length: 60 }, (_, i) => i + 1).filter((i) => i !== label)]
          .filter((i) => !history.includes(i) || i === label)
          .slice(0, 20)
          .reverse();
        const mine = await ranker.rank(dataset, history, candidates);
        const product = await rankCandidates({
          dataset,
          backend: ranker.backend,
          prompts: ranker.prompts,
          verbalizer: ranker.verbalizer,
          records: [
            { split: "test", user, label, labelRank: 1, candidates, scores: candidates.map(() => 0) },
          ],
          splits: ["test"],
        });
        const ranked = product.ranked[0]!;
        expect(mine.items).toEqual(ranked.candidates);
        expect(mine.scores.map((s) => Math.fround(s))).toEqual(ranked.scores.map((s) => Math.fround(s)));
        expect([...mine.items].sort((a, b) => a - b)).toEqual([...candidates].sort((a, b) => a - b));
        // A real order, not the input one: the letters' scores differ.
        expect(new Set(mine.scores).size).toBeGreaterThan(1);
      }
    } finally {
      await ranker.close();
    }
  }, 120_000);
});
