/**
 * Training iterations/s of the baseline retrievers (SASRec, BERT4Rec, NARM) at the ML settings (ml-latest-small,
 * batch 16, length 200, d 64, dropout 0.2, each model's own batches), with LRURec measured in the same run as
 * the baseline: the models take turns step by step, so machine noise hits all of them alike. One step = the
 * model's batch → zero grads → forward + cross-entropy over all items + backward → clip 5 → AdamW. Medians.
 *
 *   npm run bench -- baselines [--iterations 20] [--models lru,sasrec,bert4rec,narm] [--json]
 *
 * Threads: LLAMAREC_THREADS (1 or 2) as for training.
 */
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { loadDataset } from "../src/data/index.js";
import { TrainingBatches } from "../src/retrievers/batches.js";
import { createRetriever } from "../src/retrievers/registry.js";
import { llamaRecNoDecay } from "../src/retrievers/weight-decay.js";
import { kernels } from "../src/tensor/kernels/index.js";
import { AdamW } from "../src/tensor/optim/adamw.js";
import { clipGradNorm } from "../src/tensor/optim/clip.js";

const { values } = parseArgs({
  options: {
    iterations: { type: "string", default: "20" },
    models: { type: "string", default: "lru,sasrec,bert4rec,narm" },
    json: { type: "boolean", default: false },
  },
});
const iterations = Number(values.iterations);
const names = values.models.split(",");
const maxLen = 200;
const { dataset } = await loadDataset({ name: "ml-latest-small" });

const runners = names.map((name) => {
  const model = createRetriever(name, { numItems: dataset.numItems, maxLen, seed: 42, dropout: 0.2 });
  const params = model.parameters();
  const optimizer = new AdamW(params, { lr: 1e-3, weightDecay: 0.01, eps: 1e-9, noDecay: llamaRecNoDecay });
  const opts = { batchSize: 16, maxLen, slidingWindow: 1, seed: 42 };
  const batches = model.trainingBatches?.(dataset.train, opts) ?? new TrainingBatches(dataset.train, opts);
  const times: number[] = [];
  let index = 0;
  const step = () => {
    const t0 = performance.now();
    const batch = batches.batch(0, index++ % batches.batchesPerEpoch);
    model.setTraining(true);
    optimizer.zeroGrad();
    model.lossAndBackward(batch);
    clipGradNorm(params, 5);
    optimizer.step();
    times.push(performance.now() - t0);
  };
  return { name, step, times };
});

for (const r of runners) r.step(); // warm-up (JIT, arenas)
for (const r of runners) r.times.length = 0;
for (let i = 0; i < iterations; i++) for (const r of runners) r.step();

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const base = runners.find((r) => r.name === "lru");
const rows = runners.map((r) => {
  const ms = median(r.times);
  return {
    model: r.name,
    msPerStep: ms,
    iterationsPerSecond: 1000 / ms,
    vsLru: base ? median(base.times) / ms : Number.NaN,
  };
});
const threads = process.env.LLAMAREC_THREADS ?? "default";
if (values.json) {
  console.log(JSON.stringify({ threads, kernels: kernels().name, iterations, loadavg: loadavg(), rows }));
} else {
  console.log(
    `ml-latest-small, batch 16 × length 200, d 64; kernels ${kernels().name}, LLAMAREC_THREADS=${threads}; ` +
      `${iterations} interleaved steps per model; load average ${loadavg()
        .map((x) => x.toFixed(1))
        .join(" ")}\n`,
  );
  console.log("| model | ms/step (median) | iterations/s | speed vs LRURec (same run) |");
  console.log("|---|--:|--:|--:|");
  for (const r of rows)
    console.log(
      `| ${r.model} | ${r.msPerStep.toFixed(0)} | ${r.iterationsPerSecond.toFixed(2)} | ${r.vsLru.toFixed(2)}× |`,
    );
}
