/**
 * Retriever throughput at the official ML settings (batch 16, length 200, d 64, 2 blocks, dropout 0.2)
 * on ml-latest-small: training iterations per second (forward + backward + clip + AdamW) and full
 * evaluation users per second (score all items, rank the label, top-20), for each kernel backend in the
 * same process. Medians over repeated measurements.
 *
 *   node --import tsx bench/retriever.ts [--iterations 8] [--reference-iterations 3] [--eval-users 64] [--backends wasm,reference]
 */
import { parseArgs } from "node:util";
import { loadDataset } from "../src/data/index.js";
import { TrainingBatches } from "../src/retrievers/batches.js";
import { evaluateSplit } from "../src/retrievers/evaluate.js";
import { createRetriever } from "../src/retrievers/registry.js";
import {
  createWasmKernels,
  type Kernels,
  referenceKernels,
  setKernels,
} from "../src/tensor/kernels/index.js";
import { AdamW, llamaRecNoDecay } from "../src/tensor/optim/adamw.js";
import { clipGradNorm } from "../src/tensor/optim/clip.js";

const { values } = parseArgs({
  options: {
    iterations: { type: "string", default: "8" },
    "reference-iterations": { type: "string", default: "3" },
    "eval-users": { type: "string", default: "64" },
    "eval-repeats": { type: "string", default: "3" },
    backends: { type: "string", default: "wasm,reference" },
    json: { type: "boolean", default: false },
  },
});

const BATCH = 16;
const MAX_LEN = 200;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const { dataset } = await loadDataset({ name: "ml-latest-small" }, { noCache: true });
const evalUsers = Math.min(Number(values["eval-users"]), dataset.numUsers);
// Evaluate the first users only; the full split is evalUsers × (numUsers / evalUsers) as long.
const evalDataset = {
  ...dataset,
  val: dataset.val.map((v, u) => (u <= evalUsers ? v : 0)),
  test: dataset.test.map((v, u) => (u <= evalUsers ? v : 0)),
};

function backend(name: string): Kernels {
  if (name === "reference") return referenceKernels;
  if (name === "wasm") return createWasmKernels();
  throw new Error(`unknown backend ${name}`);
}

interface Result {
  backend: string;
  trainItPerSec: number;
  trainSamples: number[];
  evalUsersPerSec: number;
  evalSamples: number[];
}

const results: Result[] = [];
for (const name of values.backends!.split(",")) {
  const kernels = backend(name);
  setKernels(kernels);
  const model = createRetriever("lru", { numItems: dataset.numItems, seed: 42, dropout: 0.2 });
  const params = model.parameters();
  const opt = new AdamW(params, { lr: 1e-3, weightDecay: 0.01, eps: 1e-9, noDecay: llamaRecNoDecay });
  const batches = new TrainingBatches(dataset.train, {
    batchSize: BATCH,
    maxLen: MAX_LEN,
    slidingWindow: 1,
    seed: 42,
  });
  const iterations = Number(name === "reference" ? values["reference-iterations"] : values.iterations);
  const step = (i: number) => {
    model.setTraining(true);
    opt.zeroGrad();
    model.lossAndBackward(batches.batch(0, i % batches.batchesPerEpoch));
    clipGradNorm(params, 5);
    opt.step();
  };
  step(0); // warm-up: JIT, wasm memory growth
  const trainSamples: number[] = [];
  for (let i = 1; i <= iterations; i++) {
    const t = performance.now();
    step(i);
    trainSamples.push(1000 / (performance.now() - t));
  }
  const evalSamples: number[] = [];
  for (let r = 0; r < Number(values["eval-repeats"]); r++) {
    const t = performance.now();
    const ev = evaluateSplit(model, evalDataset, "test", {
      maxLen: MAX_LEN,
      batchSize: BATCH,
      exclude: "full",
      tie: "pessimistic",
      candidateCount: 20,
    });
    evalSamples.push((1000 * ev.results.length) / (performance.now() - t));
  }
  results.push({
    backend: name,
    trainItPerSec: median(trainSamples),
    trainSamples,
    evalUsersPerSec: median(evalSamples),
    evalSamples,
  });
  if ("dispose" in kernels) (kernels as { dispose(): void }).dispose();
}

const info = `ml-latest-small: ${dataset.numUsers} users, ${dataset.numItems} items; LRU d=64, 2 blocks, batch ${BATCH}, length ${MAX_LEN}`;
if (values.json) {
  process.stdout.write(`${JSON.stringify({ info, results }, null, 2)}\n`);
} else {
  const lines = [info, "backend     train it/s   (samples)                     eval users/s  (samples)"];
  for (const r of results) {
    const fmt = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(" ");
    const train = `${r.backend.padEnd(10)}  ${r.trainItPerSec.toFixed(2).padStart(10)}   (${fmt(r.trainSamples)})`;
    lines.push(`${train.padEnd(62)}${r.evalUsersPerSec.toFixed(1).padStart(12)}  (${fmt(r.evalSamples)})`);
  }
  if (results.length === 2) {
    lines.push(
      `speed-up ${results[0]!.backend}/${results[1]!.backend}: training ×${(results[0]!.trainItPerSec / results[1]!.trainItPerSec).toFixed(1)}, ` +
        `evaluation ×${(results[0]!.evalUsersPerSec / results[1]!.evalUsersPerSec).toFixed(1)}`,
    );
  }
  process.stdout.write(`${lines.join("\n")}\n`);
}
process.exit(0);
