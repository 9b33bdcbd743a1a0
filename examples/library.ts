// llamarec as a library, end to end on the bundled MovieLens data: train an LRURec retriever (briefly),
// take its top-20 candidates for one user's history, let the LLM rank them, and measure both stages.
// In this repository: `npx tsx examples/library.ts`. In your project (`npm install llamarec`): the same code.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  bundledTinyGguf,
  loadDataset,
  loadRetriever,
  metricsFromRanks,
  openRanker,
  retrieveCandidates,
  trainRetriever,
} from "llamarec";

// 1. Data: MovieLens ml-latest-small, 5-core filtered, leave-one-out; items are dense ids 1…numItems.
const { dataset } = await loadDataset({ name: "ml-latest-small" }, { noCache: true });
console.log(`${dataset.name}: ${dataset.numUsers} users, ${dataset.numItems} items`);

// 2. Retriever: LRURec trained into a run folder. 30 iterations keep the example short; the paper trains
//    until validation Recall@10 stops improving (leave maxIterations out for that).
const runDir = mkdtempSync(join(tmpdir(), "llamarec-example-"));
await trainRetriever({ dataset, model: "lru", runDir, training: { maxIterations: 30, valEvery: 30 } });
const retriever = await loadRetriever(runDir);

// 3. Candidates for one history (item ids, oldest first): user 1's training items and validation item.
const title = (item: number) => dataset.titles[item];
const user = 1;
const history = [...dataset.train[user]!, dataset.val[user]!];
const candidates = retrieveCandidates(retriever, history, { k: 20 });
console.log(
  `retriever candidates for user ${user}: ${candidates.items.slice(0, 3).map(title).join("; ")}; …`,
);

// 4. Ranking: one prompt with the last 20 history titles and the 20 candidates as letters A…T; one
//    forward pass, the letters' next-token scores order the candidates. The bundled model is a tiny
//    random-weight Llama 2 (real tokenizer): it shows the mechanics, not the paper's quality — pass a
//    fine-tuned model (or `openRunRanker(runDir)` after `trainRankerRun`) for that.
const ranker = await openRanker({ backend: "engine", model: bundledTinyGguf() });
try {
  const ranked = await ranker.rank(dataset, history, candidates.items);
  console.log(`ranked by ${ranker.backend.name}: ${ranked.items.slice(0, 3).map(title).join("; ")}; …`);

  // 5. Metrics: the held-out test item's rank among the candidates, before and after ranking, for a few
  //    test users (21 = not among the 20 candidates: a miss at every k ≤ 20).
  const retrieverRanks: number[] = [];
  const twoStageRanks: number[] = [];
  for (let u = 1; u <= 40; u++) {
    const h = [...dataset.train[u]!, dataset.val[u]!];
    const label = dataset.test[u]!;
    const c = retrieveCandidates(retriever, h);
    const r = await ranker.rank(dataset, h, c.items);
    retrieverRanks.push(c.items.includes(label) ? c.items.indexOf(label) + 1 : 21);
    twoStageRanks.push(r.items.includes(label) ? r.items.indexOf(label) + 1 : 21);
  }
  const before = metricsFromRanks(retrieverRanks, [5, 10]);
  const after = metricsFromRanks(twoStageRanks, [5, 10]);
  console.log(`retriever NDCG@10 over ${retrieverRanks.length} test users: ${before["NDCG@10"]!.toFixed(4)}`);
  console.log(`two-stage NDCG@10 over ${twoStageRanks.length} test users: ${after["NDCG@10"]!.toFixed(4)}`);
} finally {
  await ranker.close();
  rmSync(runDir, { recursive: true, force: true });
}
