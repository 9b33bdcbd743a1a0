import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { metricsFromRanks } from "../../src/eval/index.js";
import type { PromptIds, RankerBackend } from "../../src/ranker/backend.js";
import { PromptBuilder } from "../../src/ranker/prompt.js";
import { orderByScore, rankCandidates, writeRankOutputs } from "../../src/ranker/rank.js";
import { Verbalizer } from "../../src/ranker/verbalizer.js";
import { charTokenizer, datasetFromSequences, fakeCandidates, lcg } from "./training/fixtures.js";

const tokenizer = charTokenizer();
const prompts = new PromptBuilder(tokenizer);
const verbalizer = Verbalizer.create(tokenizer);

const rand = lcg(5);
const dataset = datasetFromSequences(
  200,
  Array.from({ length: 40 }, () => Array.from({ length: 12 }, () => 1 + Math.floor(rand() * 200))),
);
const records = [
  ...fakeCandidates(dataset, "val", { coverage: 0.7 }),
  ...fakeCandidates(dataset, "test", { coverage: 0.6 }),
];

/** Reads the candidate titles back out of the prompt text: "(A) I17" -> item 17 at letter A. */
function candidatesInPrompt(p: PromptIds): number[] {
  const text = tokenizer.decode(p.ids);
  const pool = text.slice(text.indexOf("Candidate pool:"));
  return [...pool.matchAll(/\(([A-T])\) I(\d+)/g)].map((m) => Number(m[2]));
}

/** Prefers larger item ids, whatever letter they sit at. */
class ItemIdBackend implements RankerBackend {
  readonly name = "item-id";
  calls = 0;
  async scorePrompts(ps: readonly PromptIds[]) {
    this.calls += ps.length;
    return ps.map((p) => Float32Array.from(candidatesInPrompt(p), (item) => item / 10));
  }
  async close() {}
}

/** Pure position bias: always letter A. */
const letterA: RankerBackend = {
  name: "letter-a",
  async scorePrompts(ps) {
    return ps.map((p) => Float32Array.from(p.letterIds, (_, i) => (i === 0 ? 0 : -5)));
  },
  async close() {},
};

const dir = await mkdtemp(join(tmpdir(), "llamarec-rank-"));
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("rankCandidates", () => {
  it("reorders the covered users' candidates by the backend's letter scores", async () => {
    const backend = new ItemIdBackend();
    const result = await rankCandidates({ dataset, records, backend, prompts, verbalizer });
    const covered = records.filter((r) => r.candidates.includes(r.label));
    expect(result.ranked).toHaveLength(covered.length);
    expect(backend.calls).toBe(covered.length);
    for (const r of result.ranked) {
      expect(r.candidates).toEqual([...r.candidates].sort((a, b) => b - a));
      expect(r.labelRankAfter).toBe(r.candidates.indexOf(r.label) + 1);
      const src = records.find((s) => s.split === r.split && s.user === r.user)!;
      expect(r.labelRankBefore).toBe(src.labelRank);
      expect(new Set(r.candidates)).toEqual(new Set(src.candidates));
      // Letter log-softmax: probabilities over the 20 letters sum to 1.
      expect(r.scores.reduce((s, x) => s + Math.exp(x), 0)).toBeCloseTo(1, 4);
    }
    // Subset metrics: the ranker's ranks vs the retriever's positions on the same users.
    const val = result.metrics.val!;
    const valRanked = result.ranked.filter((r) => r.split === "val");
    expect(val.subsetUsers).toBe(valRanked.length);
    expect(val.users).toBe(dataset.numUsers);
    expect(val.rankerOnSubset["NDCG@10"]).toBeCloseTo(
      metricsFromRanks(
        valRanked.map((r) => r.labelRankAfter!),
        [1, 5, 10],
      )["NDCG@10"]!,
      10,
    );
    expect(val.retrieverOnSubset["Recall@5"]).toBeCloseTo(
      metricsFromRanks(
        valRanked.map((r) => r.labelRankBefore),
        [1, 5, 10],
      )["Recall@5"]!,
      10,
    );
    // Overall = subset weighted by its share (misses contribute 0 at k <= 20).
    expect(val.overall["NDCG@10"]).toBeCloseTo(
      (val.rankerOnSubset["NDCG@10"]! * val.subsetUsers) / val.users,
      10,
    );
    expect(val.missingRankerUsers).toBe(0);
  });

  it("a pure position-bias backend keeps the retriever's order with one order", async () => {
    const result = await rankCandidates({
      dataset,
      records,
      backend: letterA,
      prompts,
      verbalizer,
      splits: ["test"],
    });
    for (const r of result.ranked) expect(r.labelRankAfter).toBe(r.labelRankBefore);
    const m = result.metrics.test!;
    expect(m.rankerOnSubset).toEqual(m.retrieverOnSubset);
    expect(result.metrics.val).toBeUndefined();
  });

  it("averaging over shuffled orders maps scores back to items (same ranking for a position-free backend)", async () => {
    const one = await rankCandidates({ dataset, records, backend: new ItemIdBackend(), prompts, verbalizer });
    const backend = new ItemIdBackend();
    const four = await rankCandidates({ dataset, records, backend, prompts, verbalizer, orders: 4, seed: 3 });
    expect(backend.calls).toBe(4 * one.ranked.length);
    expect(four.prompts).toBe(4 * one.ranked.length);
    expect(four.ranked.map((r) => r.candidates)).toEqual(one.ranked.map((r) => r.candidates));
    // And it removes a pure position bias: scores average to nearly equal, far from "always A".
    const biased = await rankCandidates({
      dataset,
      records,
      backend: letterA,
      prompts,
      verbalizer,
      orders: 8,
      seed: 1,
    });
    const spread = biased.ranked.map((r) => r.scores[0]! - r.scores.at(-1)!);
    expect(Math.max(...spread)).toBeLessThan(5);
  });

  it("allUsers ranks missed users too without changing the metrics", async () => {
    const base = await rankCandidates({
      dataset,
      records,
      backend: new ItemIdBackend(),
      prompts,
      verbalizer,
    });
    const all = await rankCandidates({
      dataset,
      records,
      backend: new ItemIdBackend(),
      prompts,
      verbalizer,
      allUsers: true,
    });
    expect(all.ranked).toHaveLength(records.length);
    expect(all.ranked.filter((r) => r.labelRankAfter === null).length).toBe(
      records.length - base.ranked.length,
    );
    expect(all.metrics).toEqual(base.metrics);
  });

  it("writes ranked.jsonl and metrics.json", async () => {
    const result = await rankCandidates({
      dataset,
      records,
      backend: new ItemIdBackend(),
      prompts,
      verbalizer,
    });
    const paths = await writeRankOutputs(dir, result, { backend: "item-id" });
    const lines = (await readFile(paths.ranked, "utf8")).trim().split("\n");
    expect(lines).toHaveLength(result.ranked.length);
    const first = JSON.parse(lines[0]!);
    expect(Object.keys(first)).toEqual([
      "split",
      "user",
      "label",
      "labelRankBefore",
      "labelRankAfter",
      "candidates",
      "scores",
    ]);
    const metrics = JSON.parse(await readFile(paths.metrics, "utf8"));
    expect(metrics.backend).toBe("item-id");
    expect(metrics.splits.test.rankerOnSubset["NDCG@10"]).toBeCloseTo(
      result.metrics.test!.rankerOnSubset["NDCG@10"]!,
      10,
    );
  });

  it("rejects NaN scores and candidates of another dataset", async () => {
    const nan: RankerBackend = {
      name: "nan",
      async scorePrompts(ps) {
        return ps.map((p) => new Float32Array(p.letterIds.length).fill(Number.NaN));
      },
      async close() {},
    };
    await expect(rankCandidates({ dataset, records, backend: nan, prompts, verbalizer })).rejects.toThrow(
      /NaN/,
    );
    const wrong = records.map((r) => ({ ...r, label: r.label === 1 ? 2 : 1 }));
    await expect(
      rankCandidates({ dataset, records: wrong, backend: letterA, prompts, verbalizer }),
    ).rejects.toThrow(/differs from the dataset/);
  });
});

describe("orderByScore", () => {
  it("sorts descending and keeps index order on ties", () => {
    expect(orderByScore([1, 3, 3, -Infinity, 2])).toEqual([1, 2, 4, 0, 3]);
  });
});
