/**
 * LLM ranking in the server: micro-batching, reordering by the verbalizer's letter scores, the bounded
 * queue (429 + Retry-After), deadlines and backend errors (retriever order, ranked: false), and the real
 * llama.cpp backend on a tiny written GGUF agreeing with scoring the same prompt directly.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PromptIds, RankerBackend } from "../../src/ranker/backend.js";
import { PromptBuilder } from "../../src/ranker/prompt.js";
import { tokenizerFrom } from "../../src/ranker/training/model-source.js";
import { logSoftmax, Verbalizer } from "../../src/ranker/verbalizer.js";
import { createServer, type LlamarecServer } from "../../src/server/app.js";
import { type LoadedServing, loadServing } from "../../src/server/load.js";
import { openRankerTools } from "../../src/server/ranker-setup.js";
import { type RankerTools, type RankingOptions, RankingQueue } from "../../src/server/ranking.js";
import { writeTinyLlama } from "../fixtures/tiny-llama.js";
import { type TinyRun, trainTinyRun } from "./fixtures.js";

interface ServedItem {
  item_id: string;
  title: string;
  score: number;
}

/** A backend that prefers later letters (the retriever's order reversed), optionally slow or failing. */
class ScriptedBackend implements RankerBackend {
  readonly name = "scripted";
  readonly batches: number[] = [];
  constructor(
    private readonly delayMs = 0,
    private readonly fail = false,
  ) {}
  async scorePrompts(prompts: readonly PromptIds[]): Promise<Float32Array[]> {
    this.batches.push(prompts.length);
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.fail) throw new Error("model crashed");
    return prompts.map((p) => Float32Array.from(p.letterIds, (_, i) => i * 0.5));
  }
  async close(): Promise<void> {}
}

let run: TinyRun;
let gguf: string;
let tools: Omit<RankerTools, "backend">;
beforeAll(async () => {
  run = await trainTinyRun("llamarec-serve-rank-");
  mkdirSync(join(run.dir, "llm"));
  gguf = (await writeTinyLlama(join(run.dir, "llm"), { seed: 7, std: 0.2 })).gguf;
  const prompts = new PromptBuilder(tokenizerFrom(gguf).tokenizer);
  tools = { prompts, verbalizer: Verbalizer.forPrompt(prompts), maxHistory: 20, numCandidates: 20 };
}, 300_000);
afterAll(() => run?.cleanup());

async function serve(
  backend: RankerBackend,
  options: RankingOptions,
): Promise<{ server: LlamarecServer; s: LoadedServing }> {
  const s = await loadServing({
    runDir: run.runDir,
    store: `sqlite:${run.dir}/rank-${Math.random()}.sqlite`,
  });
  s.ranking = new RankingQueue({ ...tools, backend }, options);
  return { server: await createServer(s), s };
}

async function recommend(server: LlamarecServer, body: object) {
  const res = await server.app.inject({ method: "POST", url: "/v1/recommend", payload: body });
  return {
    status: res.statusCode,
    body: res.json() as { items: ServedItem[]; ranked: boolean; note?: string; ranking_ms: number },
    headers: res.headers,
  };
}

describe("ranking in the server", () => {
  it("reorders the retriever's 20 candidates by letter score, micro-batching concurrent requests", async () => {
    const backend = new ScriptedBackend(20);
    const { server } = await serve(backend, { batchSize: 4, windowMs: 30 });
    const plain = await recommend(server, { user_id: "1", k: 20, rank: false });
    expect(plain.body.ranked).toBe(false);
    const ranked = await recommend(server, { user_id: "1", k: 20 });
    expect(ranked.body.ranked).toBe(true);
    expect(ranked.body.items.map((i) => i.item_id)).toEqual(plain.body.items.map((i) => i.item_id).reverse());
    const expected = logSoftmax(Float32Array.from({ length: 20 }, (_, i) => i * 0.5));
    expect(ranked.body.items[0]!.score).toBeCloseTo(expected[19]!, 5);
    // k < 20 still ranks all 20 candidates, then cuts.
    const top3 = await recommend(server, { user_id: "1", k: 3 });
    expect(top3.body.items).toEqual(ranked.body.items.slice(0, 3));

    backend.batches.length = 0;
    const many = await Promise.all(
      ["1", "2", "3", "4", "5", "6", "7", "8"].map((u) => recommend(server, { user_id: u, k: 5 })),
    );
    expect(many.every((r) => r.status === 200 && r.body.ranked)).toBe(true);
    expect(backend.batches.reduce((a, b) => a + b, 0)).toBe(8);
    expect(Math.max(...backend.batches)).toBeGreaterThan(1);
    expect(Math.max(...backend.batches)).toBeLessThanOrEqual(4);
    const metrics = await server.app.inject({ method: "GET", url: "/metrics" });
    const batches = Number(/llamarec_ranking_batch_size_count (\d+)/.exec(metrics.body)?.[1]);
    const prompts = Number(/llamarec_ranking_batch_size_sum (\d+)/.exec(metrics.body)?.[1]);
    expect(batches).toBe(backend.batches.length + 2); // the two ranked single requests before
    expect(prompts).toBe(8 + 2);
    await server.close();
  });

  it("default window: a lone prompt goes to an idle ranker at once; prompts arriving meanwhile form the next batch", async () => {
    const backend = new ScriptedBackend(150);
    const { server } = await serve(backend, { batchSize: 8 });
    const t0 = performance.now();
    const first = recommend(server, { user_id: "1" });
    await new Promise((r) => setTimeout(r, 40)); // the first prompt is on the backend by now
    const more = ["2", "3", "4"].map((u) => recommend(server, { user_id: u }));
    const answers = await Promise.all([first, ...more]);
    expect(answers.every((a) => a.status === 200 && a.body.ranked)).toBe(true);
    expect(backend.batches).toEqual([1, 3]);
    // The first answer took one backend call (150 ms) plus request handling, not a wait for the others.
    expect((await first).body.ranking_ms).toBeLessThan(150 + 100);
    expect(performance.now() - t0).toBeLessThan(2 * 150 + 1000);
    await server.close();
  });

  it("a full queue answers 429 with Retry-After; nothing is lost for the accepted ones", async () => {
    const backend = new ScriptedBackend(150);
    const { server } = await serve(backend, { batchSize: 1, windowMs: 0, maxQueue: 2, deadlineMs: 10_000 });
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) => recommend(server, { user_id: String(i + 1) })),
    );
    const refused = answers.filter((a) => a.status === 429);
    expect(refused.length).toBeGreaterThan(0);
    expect(Number(refused[0]!.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    expect((refused[0]!.body as unknown as { error: string }).error).toBe("too_many_requests");
    expect(answers.filter((a) => a.status === 200).every((a) => a.body.ranked)).toBe(true);
    const metrics = await server.app.inject({ method: "GET", url: "/metrics" });
    expect(metrics.body).toMatch(new RegExp(`llamarec_ranking_rejected_total ${refused.length}`));
    await server.close();
  });

  it("a ranking past its deadline, or a failing ranker, returns the retriever's order with ranked: false", async () => {
    for (const [backend, reason, note] of [
      [new ScriptedBackend(400), "deadline", /ranking missed its 50 ms deadline/],
      [new ScriptedBackend(0, true), "error", /ranker failed: model crashed/],
    ] as const) {
      const { server } = await serve(backend, { deadlineMs: 50 });
      const plain = await recommend(server, { user_id: "2", k: 10, rank: false });
      const r = await recommend(server, { user_id: "2", k: 10 });
      expect(r.status).toBe(200);
      expect(r.body.ranked).toBe(false);
      expect(r.body.note).toMatch(note);
      expect(r.body.items).toEqual(plain.body.items);
      const metrics = await server.app.inject({ method: "GET", url: "/metrics" });
      expect(metrics.body).toContain(`llamarec_ranker_fallbacks_total{reason="${reason}"} 1`);
      await server.close();
    }
  });

  it("SIGTERM-style close lets queued rankings finish", async () => {
    const backend = new ScriptedBackend(100);
    const { server } = await serve(backend, { batchSize: 1, windowMs: 0 });
    const pending = Promise.all(["1", "2", "3"].map((u) => recommend(server, { user_id: u })));
    await new Promise((r) => setTimeout(r, 20));
    const closing = server.close();
    const answers = await pending;
    await closing;
    expect(answers.map((a) => [a.status, a.body.ranked])).toEqual([
      [200, true],
      [200, true],
      [200, true],
    ]);
  });

  it("llama.cpp on a tiny GGUF: the served order is the backend's order for the same prompt", async () => {
    const s = await loadServing({
      runDir: run.runDir,
      store: `sqlite:${run.dir}/rank-cpp.sqlite`,
      ranker: { kind: "llamacpp", model: gguf, threads: 1, sequences: 2 },
    });
    const server = await createServer(s);
    const plain = await recommend(server, { user_id: "3", k: 20, rank: false });
    const ranked = await recommend(server, { user_id: "3", k: 20 });
    expect(ranked.body.ranked).toBe(true);
    const titles = (ids: string[]) => ids.map((id) => s.catalogue.title(s.catalogue.item(id)));
    const history = titles(
      s.catalogue
        .knownHistory("3")
        .slice(-20)
        .map((i) => s.catalogue.itemId(i)),
    );
    const t = s.ranking!.tools;
    const prompt = t.prompts.build({ history, candidates: titles(plain.body.items.map((i) => i.item_id)) });
    const [letters] = await t.backend.scorePrompts([{ ids: prompt.ids, letterIds: t.verbalizer.ids }]);
    const lp = logSoftmax(letters!);
    const expected = plain.body.items
      .map((item, p) => ({ id: item.item_id, score: lp[p]! }))
      .sort((a, b) => b.score - a.score);
    expect(ranked.body.items.map((i) => i.item_id)).toEqual(expected.map((e) => e.id));
    expect(ranked.body.items.map((i) => i.item_id)).not.toEqual(plain.body.items.map((i) => i.item_id));
    ranked.body.items.forEach((item, p) => {
      expect(item.score).toBeCloseTo(expected[p]!.score, 4);
    });
    await server.close();
  }, 300_000);
});

describe("ranker setup from a run", () => {
  it("needs a model when the run has no trained ranker", async () => {
    await expect(openRankerTools(run.runDir, { kind: "llamacpp" })).rejects.toThrow(/no trained ranker/);
  });
});
