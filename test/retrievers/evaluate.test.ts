import { describe, expect, it } from "vitest";
import { rankUsers } from "../../src/eval/full-ranking.js";
import { metricsFromRanks } from "../../src/eval/metrics.js";
import { encodeEvaluationRow, evaluationHistory, evaluationUsers } from "../../src/retrievers/batches.js";
import { evaluateSplit, splitMetrics } from "../../src/retrievers/evaluate.js";
import { createLru, planRows } from "../../src/retrievers/lru.js";
import type { SequentialRetriever } from "../../src/retrievers/types.js";
import { noGrad } from "../../src/tensor/tape.js";
import { skewedDataset } from "./fixtures.js";

describe("retriever evaluation goes through src/eval", () => {
  const ds = skewedDataset(40, 30, 3, 25, 5);

  // Coarse scores with many ties: item i scores floor(i / 4) + (user-dependent shift of the last item's block).
  const tied: SequentialRetriever = {
    modelName: "tied",
    config: {},
    numItems: ds.numItems,
    parameters: () => [],
    setTraining: () => {},
    lossAndBackward: () => 0,
    scoreNext: (tokens, b, len) => {
      const w = ds.numItems + 1;
      const out = new Float32Array(b * w);
      for (let r = 0; r < b; r++) {
        const last = tokens[(r + 1) * len - 1]!;
        for (let i = 0; i < w; i++) out[r * w + i] = Math.floor(((i + last) % w) / 4);
      }
      return out;
    },
  };

  it("expected ties keep their tie counts, and metrics equal rankUsers' on the same scores", async () => {
    const opts = {
      maxLen: 8,
      batchSize: 4,
      exclude: "full" as const,
      tie: "expected" as const,
      candidateCount: 0,
    };
    const ev = evaluateSplit(tied, ds, "val", opts);
    expect(ev.results.some((r) => (r.ties ?? 0) > 0)).toBe(true);
    expect(ev.results.some((r) => !Number.isInteger(r.rank))).toBe(true);
    const tokens = new Int32Array(opts.maxLen);
    const viaEval = await rankUsers(
      ds,
      "val",
      (users) => {
        const w = ds.numItems + 1;
        const out = new Float32Array(users.length * w);
        users.forEach((u, r) => {
          encodeEvaluationRow(evaluationHistory(ds, "val", u), opts.maxLen, tokens, 0);
          out.set(tied.scoreNext(tokens, 1, opts.maxLen), r * w);
        });
        return out;
      },
      { tie: "expected", exclude: "full", progressLabel: null, users: evaluationUsers(ds, "val") },
    );
    expect(
      ev.results.map(({ user, label, rank, ties }) => ({ user, label, rank, ...(ties ? { ties } : {}) })),
    ).toEqual(viaEval);
    const ks = [1, 5, 10];
    expect(splitMetrics(ev, ks)).toEqual(metricsFromRanks(viaEval, ks));
    // Dropping the tie counts (what a bare rank list does) gives different numbers: the counts matter.
    expect(
      metricsFromRanks(
        ev.results.map((r) => r.rank),
        ks,
      ),
    ).not.toEqual(splitMetrics(ev, ks));
  });

  it("scores do not depend on how many users share a model call (LRU, last-row inference path)", () => {
    const model = createLru({ numItems: ds.numItems, hiddenDim: 8, numBlocks: 2, dropout: 0.1, seed: 3 });
    const base = { maxLen: 12, exclude: "input" as const, tie: "pessimistic" as const, candidateCount: 5 };
    // batchSize 1 → chunks of EVAL_ROWS / maxLen users; compare with one user per call through scoreNext.
    const chunked = evaluateSplit(model, ds, "test", { ...base, batchSize: 1 });
    const users = evaluationUsers(ds, "test");
    const tokens = new Int32Array(base.maxLen);
    users.forEach((u, i) => {
      encodeEvaluationRow(evaluationHistory(ds, "test", u), base.maxLen, tokens, 0);
      const one = model.scoreNext(tokens, 1, base.maxLen);
      const r = chunked.results[i]!;
      expect(r.user).toBe(u);
      expect(r.scores).toEqual(r.candidates!.map((c) => one[c]!));
    });
    const big = evaluateSplit(model, ds, "test", { ...base, batchSize: users.length });
    expect(big.results).toEqual(chunked.results);
  });

  it("the last-row inference path equals the last rows of the full forward, bit for bit", () => {
    const model = createLru({ numItems: ds.numItems, hiddenDim: 8, numBlocks: 2, dropout: 0.1, seed: 4 });
    const users = evaluationUsers(ds, "val").slice(0, 9);
    const len = 10;
    const tokens = new Int32Array(users.length * len);
    users.forEach((u, r) => {
      encodeEvaluationRow(evaluationHistory(ds, "val", u), len, tokens, r);
    });
    model.setTraining(false);
    const plan = planRows(tokens, null, users.length, len);
    const full = noGrad(() => model.hidden(plan));
    const last = noGrad(() => model.hidden(plan, true));
    expect(last.shape).toEqual([users.length, 8]);
    plan.lastRow.forEach((row, b) => {
      expect([...last.data.subarray(b * 8, b * 8 + 8)]).toEqual([
        ...full.data.subarray(row * 8, row * 8 + 8),
      ]);
    });
  });
});
