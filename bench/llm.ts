// LLM benchmark: `npx tsx bench/llm.ts [--d 256] [--layers 4] [--heads 8] [--kv-heads 4] [--ffn 704]
//   [--vocab 8000] [--tokens 512] [--runs 5] [--train-tokens 600] [--train-runs 3] [--long 1536] [--skip-cpp]
//   [--skip-forward] [--checkpoint]`.
// 1. Prompt processing (one forward pass over a prompt, next-token logits at the last position):
//    tokens/s of our engine vs llama.cpp (node-llama-cpp, F32 weights and KV cache, 2 threads), same
//    random F32 GGUF file, medians. llama.cpp gets prompts that differ from the second token on, so its
//    prefix cache cannot help.
// 2. LoRA fine-tuning (r 8, alpha 32, q/v, dropout 0.05): examples/s of forward + backward + AdamW on
//    ranking-length prompts (loss on the answer position), median over runs.
// 3. Peak RSS of one LoRA training step at --long tokens (attention keeps O(T·d) per layer).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { LLAMAREC_LORA } from "../src/llm/lora/config.js";
import { writeLlamaGguf } from "../src/llm/model/gguf-export.js";
import type { LlamaForCausalLM } from "../src/llm/model/llama.js";
import { EngineBackend } from "../src/ranker/backends/engine.js";
import { LlamaCppBackend } from "../src/ranker/backends/llamacpp.js";
import { kernels } from "../src/tensor/kernels/index.js";
import { linearCrossEntropy } from "../src/tensor/ops/cross_entropy.js";
import { AdamW } from "../src/tensor/optim/adamw.js";
import { Rng } from "../src/tensor/rng.js";
import { backward } from "../src/tensor/tape.js";
import { randomLlama, syntheticSpmVocab, tinyLlamaConfig } from "../test/fixtures/synthetic-llama.js";
import { median } from "./timing.js";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const d = arg("--d", 256);
const layers = arg("--layers", 4);
const heads = arg("--heads", 8);
const kvHeads = arg("--kv-heads", 4);
const ffn = arg("--ffn", 704);
const vocab = arg("--vocab", 8000);
const tokens = arg("--tokens", 512);
const runs = arg("--runs", 5);
const trainTokens = arg("--train-tokens", 600);
const trainRuns = arg("--train-runs", 3);
const longTokens = arg("--long", 1536);
const skipCpp = process.argv.includes("--skip-cpp");
const skipForward = process.argv.includes("--skip-forward");
// Per-layer activation checkpointing during training (recompute in backward).
const useCheckpoint = process.argv.includes("--checkpoint");
const skipTrain = process.argv.includes("--skip-train");
// llama.cpp threads; ours follow LLAMAREC_THREADS (default 2).
const cppThreads = arg("--cpp-threads", 2);

const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MB`;

function prompt(length: number, variant: number): number[] {
  // BOS, then a varying token so no two prompts share more than the BOS.
  return [
    1,
    300 + (variant % 1000),
    ...Array.from({ length: length - 2 }, (_, i) => 300 + ((i * 7919 + variant) % (vocab - 300))),
  ];
}

/** Wall and CPU (user + system, all threads of this process) milliseconds of one call. */
async function measure(fn: () => Promise<unknown>): Promise<{ wall: number; cpu: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1000 };
}

function report(label: string, xs: Array<{ wall: number; cpu: number }>): number {
  const wall = median(xs.map((x) => x.wall));
  const cpu = median(xs.map((x) => x.cpu));
  console.log(
    `${label} forward ${tokens} tokens: median wall ${wall.toFixed(0)} ms = ${((tokens / wall) * 1000).toFixed(0)} tokens/s, median CPU ${cpu.toFixed(0)} ms (walls: ${xs.map((x) => x.wall.toFixed(0)).join(", ")})`,
  );
  return wall;
}

// Runs alternate between the two engines so a change in machine load hits both alike.
async function forwardBench(model: LlamaForCausalLM, path: string) {
  const letterIds = Array.from({ length: 20 }, (_, i) => 286 + i);
  const engine = new EngineBackend(model);
  const cpp = skipCpp
    ? null
    : await LlamaCppBackend.open({
        modelPath: path,
        threads: cppThreads,
        sequences: 1,
        kvCacheF32: true,
        contextSize: Math.max(2048, tokens + 8),
        batchSize: 512,
      });
  try {
    await engine.scorePrompts([{ ids: prompt(tokens, 999), letterIds }]); // warm-up
    await cpp?.scorePrompts([{ ids: prompt(tokens, 998), letterIds }]);
    const ours: Array<{ wall: number; cpu: number }> = [];
    const theirs: Array<{ wall: number; cpu: number }> = [];
    for (let r = 0; r < runs; r++) {
      ours.push(await measure(() => engine.scorePrompts([{ ids: prompt(tokens, r), letterIds }])));
      if (cpp)
        theirs.push(await measure(() => cpp.scorePrompts([{ ids: prompt(tokens, 100 + r), letterIds }])));
    }
    const oursMs = report("engine (TS + wasm)", ours);
    if (!cpp) return;
    const cppMs = report(`llama.cpp (${cppThreads} threads)`, theirs);
    console.log(`ratio engine/llama.cpp wall time: ${(oursMs / cppMs).toFixed(2)}×`);
  } finally {
    await cpp?.close();
  }
}

function trainStep(model: LlamaForCausalLM, opt: AdamW, ids: number[], label: number): void {
  const x = Int32Array.from(ids);
  // Loss on the letter after the response marker: only the last position reaches the LM head.
  const labels = Int32Array.of(label);
  const h = model.hidden(x, { checkpoint: useCheckpoint, lastRows: 1 });
  const loss = linearCrossEntropy(h, model.outputWeight, null, labels);
  backward(loss);
  opt.step();
  opt.zeroGrad();
}

function trainBench(model: LlamaForCausalLM) {
  model.attachLora(LLAMAREC_LORA, new Rng(1));
  model.train();
  const params = model.loraParameters().map(([, p]) => p);
  const opt = new AdamW(params, { lr: 1e-4, weightDecay: 0.01 });
  const rssBefore = process.memoryUsage().rss;
  // Long step first so maxRSS reflects it (the shorter steps below need less).
  const t0 = performance.now();
  trainStep(model, opt, prompt(longTokens, 5), 290);
  const longMs = performance.now() - t0;
  const peak = process.resourceUsage().maxRSS * 1024;
  console.log(
    `LoRA train step at ${longTokens} tokens: ${(longMs / 1000).toFixed(1)} s; RSS before ${mb(rssBefore)}, peak ${mb(peak)} (+${mb(peak - rssBefore)})`,
  );
  trainStep(model, opt, prompt(trainTokens, 6), 290); // warm-up at the measured length
  const times: number[] = [];
  for (let r = 0; r < trainRuns; r++) {
    const s = performance.now();
    trainStep(model, opt, prompt(trainTokens, 10 + r), 286 + (r % 20));
    times.push(performance.now() - s);
  }
  const ms = median(times);
  console.log(
    `LoRA train ${trainTokens}-token examples: median ${ms.toFixed(0)} ms/example = ${(1000 / ms).toFixed(2)} examples/s (runs: ${times.map((x) => x.toFixed(0)).join(", ")})`,
  );
}

const config = tinyLlamaConfig({
  vocabSize: vocab,
  hiddenSize: d,
  intermediateSize: ffn,
  numLayers: layers,
  numHeads: heads,
  numKvHeads: kvHeads,
  headDim: d / heads,
  maxPositionEmbeddings: 4096,
});
console.log(
  `${useCheckpoint ? "checkpointed layers; " : ""}model: d ${d}, ${layers} layers, ${heads}/${kvHeads} heads, ffn ${ffn}, vocab ${vocab}, F32; kernels: ${kernels().name}`,
);
const dir = mkdtempSync(join(tmpdir(), "llamarec-bench-llm-"));
try {
  const model = randomLlama(config, 1, 0.05);
  const path = join(dir, "model.gguf");
  writeLlamaGguf(path, model, { tokenizer: syntheticSpmVocab(vocab) });
  if (!skipForward) await forwardBench(model, path);
  if (!skipTrain) trainBench(model);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
