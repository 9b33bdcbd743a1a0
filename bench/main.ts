/**
 * Benchmarks, kept apart from the tests: `npm run bench -- <name> [options]`.
 * Each benchmark measures a baseline in the same run and prints medians and ratios against it.
 */
const BENCHMARKS: Record<string, string> = {
  kernels: "WASM SIMD kernels (1 and 2 threads) vs plain-JS reference: GEMM variants, fused cross-entropy",
  retriever: "LRURec training iterations/s and full-evaluation users/s, wasm vs reference kernels",
  baselines: "SASRec, BERT4Rec, NARM training step vs a PyTorch re-implementation of the authors' models",
  llm: "Llama forward tokens/s, our engine vs llama.cpp (same F32 model, same threads); LoRA examples/s",
  efficiency: "time to rank 20 candidates: verbalizer (one forward) vs generating the titles (paper Fig. 3)",
  grid: "issue 9's baseline grid (resumable driver: `grid run`) and its table (`grid table`); not a benchmark",
  serve:
    "HTTP serving load test: retrieval, LLM ranking (tiny GGUF), 1M-item catalogue, kill -9 fault scenario",
};

const name = process.argv[2];
if (!name || !(name in BENCHMARKS)) {
  const list = Object.entries(BENCHMARKS)
    .map(([n, what]) => `  ${n.padEnd(10)} ${what}`)
    .join("\n");
  console.error(`usage: npm run bench -- <name> [options]\n\n${list}`);
  process.exit(name ? 2 : 0);
}
// The benchmark scripts read their own options from process.argv: hide the benchmark's name from them.
process.argv.splice(2, 1);
await import(`./${name}.ts`);
