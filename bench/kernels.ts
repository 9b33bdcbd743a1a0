// Kernel benchmark: `npx tsx bench/kernels.ts [--runs N] [--ref-runs N] [--skip-ref]` (the reference runs take
// minutes). Ends with a markdown table of wall-time medians.
// GFLOP/s of the four GEMM variants at the LRURec ML-100k output-layer shapes and the fused linear
// cross-entropy forward+backward time, for the plain-JS reference and the wasm backend on 1 and 2 threads.
// Medians over runs (the 2 cores are shared, so single timings are noisy).
import type { Kernels } from "../src/tensor/kernels/api.js";
import { referenceKernels } from "../src/tensor/kernels/reference.js";
import { createWasmKernels } from "../src/tensor/kernels/wasm.js";
import { timeCalls } from "./timing.js";

function argValue(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const runs = argValue("--runs", 7);
const refRuns = argValue("--ref-runs", 5);
const skipRef = process.argv.includes("--skip-ref");

// Deterministic pseudo-random fill (xorshift), values in [−0.5, 0.5).
function filled(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = ((s >>> 0) / 4294967296 - 0.5) * scale;
  }
  return out;
}

// Medians of n calls after one warm-up call (JIT, memory growth, helper-thread start).
function time(fn: () => void, n: number): { wall: number; cpu: number } {
  fn();
  return timeCalls(fn, n);
}

const N = 3200; // batch 16 × length 200
const D = 64;
const V = 3651; // 3650 items + padding

const backends: { label: string; k: Kernels; n: number }[] = [];
if (!skipRef) backends.push({ label: "reference (plain JS)", k: referenceKernels, n: refRuns });
const wasmSimd1 = createWasmKernels({ threads: 1, variant: "simd" });
const wasm1 = createWasmKernels({ threads: 1, native: false });
const wasm2 = createWasmKernels({ threads: 2, native: false });
backends.push({ label: "wasm simd 1 thread", k: wasmSimd1, n: runs });
backends.push({ label: `wasm ${wasm1.variant} 1 thread`, k: wasm1, n: runs });
backends.push({ label: `wasm ${wasm2.variant} 2 threads`, k: wasm2, n: runs });
// The native AVX2 kernels over the same wasm backend (src/tensor/kernels/native.ts), when built and not
// turned off with LLAMAREC_KERNELS=wasm.
const native1 = createWasmKernels({ threads: 1 });
if (native1.native) {
  backends.push({ label: "wasm+native 1 thread", k: native1, n: runs });
  backends.push({ label: "wasm+native 2 threads", k: createWasmKernels({ threads: 2 }), n: runs });
}

const gemms: { name: string; tA: boolean; tB: boolean; M: number; N: number; K: number }[] = [
  { name: "logits  H[3200×64]·Wᵀ   (NT)", tA: false, tB: true, M: N, N: V, K: D },
  { name: "logits  H[3200×64]·B    (NN)", tA: false, tB: false, M: N, N: V, K: D },
  { name: "dH      G[3200×3651]·W  (NN)", tA: false, tB: false, M: N, N: D, K: V },
  { name: "dW      Gᵀ[3651×3200]·H (TN)", tA: true, tB: false, M: V, N: D, K: N },
  { name: "dW      Gᵀ·H, H stored ᵀ (TT)", tA: true, tB: true, M: V, N: D, K: N },
  // The LRU and feed-forward layers (d 64 → 256 → 64) of the same step.
  { name: "layer   X[3200×64]·Wᵀ   (NT)", tA: false, tB: true, M: N, N: 4 * D, K: D },
  { name: "layer dX G[3200×256]·W  (NN)", tA: false, tB: false, M: N, N: D, K: 4 * D },
  { name: "layer dW Gᵀ[256×3200]·X (TN)", tA: true, tB: false, M: 4 * D, N: D, K: N },
];

console.log(`node ${process.version}; runs=${runs} (reference ${refRuns}); medians`);
const results: Record<string, Record<string, number>> = {};
for (const g of gemms) {
  const A = filled(g.M * g.K, 1);
  const B = filled(g.K * g.N, 2);
  const C = new Float32Array(g.M * g.N);
  const flops = 2 * g.M * g.N * g.K;
  results[g.name] = {};
  for (const b of backends) {
    const t = time(() => b.k.gemm(g.tA, g.tB, g.M, g.N, g.K, 1, A, B, 0, C), b.n);
    results[g.name]![b.label] = t.wall;
    console.log(
      `gemm ${g.name}  ${b.label.padEnd(24)} ${t.wall.toFixed(1).padStart(8)} ms  ` +
        `${(flops / t.wall / 1e6).toFixed(2).padStart(7)} GFLOP/s  (cpu ${t.cpu.toFixed(1)} ms, ` +
        `${(flops / t.cpu / 1e6).toFixed(2)} GFLOP/s per busy core)`,
    );
  }
}

for (const ignoredShare of [0, 0.6]) {
  const H = filled(N * D, 3);
  const W = filled(V * D, 4, 0.2);
  const bias = filled(V, 5, 0.1);
  const labels = new Int32Array(N);
  for (let i = 0; i < N; i++) labels[i] = (i * 7919) % 100 < ignoredShare * 100 ? -100 : (i * 104729) % V;
  const dH = new Float32Array(N * D);
  const dW = new Float32Array(V * D);
  const dBias = new Float32Array(V);
  const name = `fused CE fwd+bwd N=${N} D=${D} V=${V}, ${ignoredShare * 100}% ignored`;
  results[name] = {};
  for (const b of backends) {
    const t = time(
      () => b.k.linearCrossEntropy({ H, W, bias, labels, N, D, V, ignoreIndex: -100, dH, dW, dBias }),
      b.n,
    );
    results[name]![b.label] = t.wall;
    console.log(
      `${name}  ${b.label.padEnd(24)} ${t.wall.toFixed(1).padStart(8)} ms  (cpu ${t.cpu.toFixed(1)} ms)`,
    );
  }
}

{
  // Elementwise kernels at LRURec shapes: LayerNorm over d = 64, GELU on the 4·d feed-forward activations.
  const rows = N;
  const x = filled(rows * D, 6, 4);
  const gamma = filled(D, 7);
  const beta = filled(D, 8);
  const y = new Float32Array(rows * D);
  const mean = new Float32Array(rows);
  const rstd = new Float32Array(rows);
  const dx = new Float32Array(rows * D);
  const dGamma = new Float32Array(D);
  const dBeta = new Float32Array(D);
  const act = filled(rows * 4 * D, 9, 8);
  const actOut = new Float32Array(act.length);
  const cases: [string, (k: Kernels) => void][] = [
    [`layerNorm fwd ${rows}×${D}`, (k) => k.layerNormForward(x, gamma, beta, rows, D, 1e-5, y, mean, rstd)],
    [
      `layerNorm bwd ${rows}×${D}`,
      (k) => k.layerNormBackward(x, x, gamma, mean, rstd, rows, D, dx, dGamma, dBeta),
    ],
    [`gelu fwd ${act.length}`, (k) => k.geluForward(act, actOut)],
    [`gelu bwd ${act.length}`, (k) => k.geluBackward(act, act, actOut)],
  ];
  for (const [name, fn] of cases) {
    results[name] = {};
    for (const b of backends) {
      const t = time(() => fn(b.k), b.n);
      results[name]![b.label] = t.wall;
      console.log(
        `${name}  ${b.label.padEnd(24)} ${t.wall.toFixed(2).padStart(8)} ms  (cpu ${t.cpu.toFixed(2)} ms)`,
      );
    }
  }
}

if (!skipRef) {
  console.log("\nspeed-up vs reference (plain JS):");
  for (const [name, byBackend] of Object.entries(results)) {
    const ref = byBackend["reference (plain JS)"]!;
    const parts = backends
      .filter((b) => b.k !== referenceKernels)
      .map((b) => `${b.label} ×${(ref / byBackend[b.label]!).toFixed(1)}`);
    console.log(`  ${name}: ${parts.join(", ")}`);
  }
}
// Markdown table (wall-time medians) for docs/benchmarks.md.
console.log(`\n| case | ${backends.map((b) => b.label).join(" | ")} |`);
console.log(`|---|${backends.map(() => "---:").join("|")}|`);
for (const [name, byBackend] of Object.entries(results)) {
  const ref = byBackend["reference (plain JS)"];
  const cells = backends.map((b) => {
    const ms = byBackend[b.label]!;
    const ratio = ref !== undefined && b.k !== referenceKernels ? ` (×${(ref / ms).toFixed(0)})` : "";
    return `${ms < 10 ? ms.toFixed(2) : ms.toFixed(1)} ms${ratio}`;
  });
  console.log(`| ${name} | ${cells.join(" | ")} |`);
}

wasmSimd1.dispose();
wasm1.dispose();
wasm2.dispose();
