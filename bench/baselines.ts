/**
 * Training step time of the baseline retrievers (SASRec, BERT4Rec, NARM) at the ML settings (ml-latest-small,
 * batch 16, length 200, d 64, 2 blocks / 2 heads, dropout 0.2, each model's own batches), against a PyTorch
 * re-implementation of the LlamaRec authors' models (bench/baselines_reference.py) IN THE SAME RUN, on the very
 * same batches, at the same thread count; LRURec (llamarec) is measured beside them. One step = the model's
 * batch → zero grads → forward + cross-entropy over all items + backward → clip 5 → AdamW. Within each side the
 * models take turns step by step, so machine noise hits all of them alike; per thread count llamarec runs,
 * then PyTorch. Medians; "CPU" is process CPU time per step (all threads), less sensitive to other jobs.
 *
 *   npm run bench -- baselines [--iterations 20] [--reference-iterations 10] [--threads 1,2]
 *     [--models lru,sasrec,bert4rec,narm] [--python python3] [--no-reference] [--json]
 *
 * Two comparisons of the models themselves (not timings) with the same reference, 1 thread:
 *   --check      same weights, no dropout, one ML batch: loss and every parameter's gradient, llamarec vs the
 *                reference in llamarec's variant (standard layer norm, exact GELU); and the inference scores of
 *                32 users' validation and test inputs (full windows among them);
 *   --curve N    N training steps of both sides on the same batches (epoch after epoch), each from its own
 *                init (`--init authors`: the reference's embeddings of SASRec/BERT4Rec at N(0, 1) as theirs;
 *                `--init llamarec`: truncated normal as llamarec), dropout 0.2: mean loss per eighth.
 *
 * The reference runs when a python3 with torch is found ($LLAMAREC_PYTHON, python3 on PATH, /usr/bin/python3)
 * and reports the BLAS library torch loaded.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { loadDataset } from "../src/data/index.js";
import {
  encodeEvaluationRow,
  evaluationHistory,
  evaluationUsers,
  TrainingBatches,
} from "../src/retrievers/batches.js";
import { createRetriever } from "../src/retrievers/registry.js";
import type { SequenceBatch, WeightLike } from "../src/retrievers/types.js";
import { llamaRecNoDecay } from "../src/retrievers/weight-decay.js";
import { createWasmKernels, setKernels } from "../src/tensor/kernels/index.js";
import { AdamW } from "../src/tensor/optim/adamw.js";
import { clipGradNorm } from "../src/tensor/optim/clip.js";
import { median } from "./timing.js";

const { values } = parseArgs({
  options: {
    iterations: { type: "string", default: "20" },
    "reference-iterations": { type: "string", default: "10" },
    threads: { type: "string", default: process.env.LLAMAREC_THREADS ?? "1" },
    models: { type: "string", default: "lru,sasrec,bert4rec,narm" },
    python: { type: "string" },
    "no-reference": { type: "boolean", default: false },
    check: { type: "boolean", default: false },
    curve: { type: "string" },
    init: { type: "string", default: "authors" },
    json: { type: "boolean", default: false },
  },
});
const iterations = Number(values.iterations);
const refIterations = Number(values["reference-iterations"]);
const names = values.models.split(",");
const threadList = values.threads.split(",").map(Number);
const maxLen = 200;
const batchSize = 16;
const dropout = 0.2;
const here = dirname(fileURLToPath(import.meta.url));
const { dataset } = await loadDataset({ name: "ml-latest-small" });

// The batches every side trains on: each model's own batching (BERT4Rec's masks drawn once, here).
const warmup = 2;
const batchesOf = new Map<string, SequenceBatch[]>();
for (const name of names) {
  const model = createRetriever(name, { numItems: dataset.numItems, maxLen, seed: 42, dropout });
  const opts = { batchSize, maxLen, slidingWindow: 1, seed: 42 };
  const source = model.trainingBatches?.(dataset.train, opts) ?? new TrainingBatches(dataset.train, opts);
  const count = Math.max(iterations, refIterations) + warmup;
  batchesOf.set(
    name,
    Array.from({ length: count }, (_, i) => source.batch(0, i % source.batchesPerEpoch)),
  );
}

interface Timing {
  ms: number[];
  cpuMs: number[];
}

function runLlamarec(threads: number): Map<string, Timing> {
  const kernels = createWasmKernels({ threads });
  setKernels(kernels);
  const runners = names.map((name) => {
    const model = createRetriever(name, { numItems: dataset.numItems, maxLen, seed: 42, dropout });
    const params = model.parameters();
    const optimizer = new AdamW(params, { lr: 1e-3, weightDecay: 0.01, eps: 1e-9, noDecay: llamaRecNoDecay });
    const batches = batchesOf.get(name)!;
    const timing: Timing = { ms: [], cpuMs: [] };
    let index = 0;
    const step = (record: boolean) => {
      const batch = batches[index++ % batches.length]!;
      const c = process.cpuUsage();
      const t0 = performance.now();
      model.setTraining(true);
      optimizer.zeroGrad();
      model.lossAndBackward(batch);
      clipGradNorm(params, 5);
      optimizer.step();
      if (!record) return;
      timing.ms.push(performance.now() - t0);
      const u = process.cpuUsage(c);
      timing.cpuMs.push((u.user + u.system) / 1000);
    };
    return { name, step, timing };
  });
  for (let i = 0; i < warmup; i++) for (const r of runners) r.step(false); // JIT, arenas
  for (let i = 0; i < iterations; i++) for (const r of runners) r.step(true);
  kernels.dispose();
  return new Map(runners.map((r) => [r.name, r.timing]));
}

function findPython(): string | null {
  const candidates = [values.python, process.env.LLAMAREC_PYTHON, "python3", "/usr/bin/python3"].filter(
    (c): c is string => typeof c === "string" && c !== "",
  );
  for (const py of candidates) {
    if (spawnSync(py, ["-c", "import torch"], { stdio: "ignore" }).status === 0) return py;
  }
  return null;
}

interface Reference {
  torch: string;
  blas: string[];
  blasInfo: string;
  threads: number;
  peakRssMb: number;
  models: Record<string, { stepSeconds: number[]; stepCpuSeconds: number[]; losses: number[] }>;
}

function runPytorch(
  python: string,
  threads: number,
  dir: string,
): Map<string, Timing> & { info?: Reference } {
  const refModels = names.filter((n) => n !== "lru"); // LRURec's reference: `npm run bench -- retriever`
  const result: Map<string, Timing> & { info?: Reference } = new Map();
  if (refModels.length === 0) return result;
  const spec = {
    settings: { numItems: dataset.numItems, batchSize, maxLen, dropout, seed: 42, init: "authors" },
    warmup,
    iterations: refIterations,
    models: refModels.map((name) => ({
      name,
      batches: batchesOf
        .get(name)!
        .map((b) => ({ tokens: Array.from(b.tokens), labels: Array.from(b.labels) })),
    })),
  };
  const file = join(dir, "spec.json");
  writeFileSync(file, JSON.stringify({ ...spec, iterations: refIterations }));
  const t = String(threads);
  const out = execFileSync(python, [join(here, "baselines_reference.py"), file, t], {
    encoding: "utf8",
    maxBuffer: 64 * 2 ** 20,
    env: { ...process.env, OMP_NUM_THREADS: t, OPENBLAS_NUM_THREADS: t, MKL_NUM_THREADS: t },
  });
  const r = JSON.parse(out.trim().split("\n").pop()!) as Reference;
  for (const [name, m] of Object.entries(r.models))
    result.set(name, {
      ms: m.stepSeconds.map((x) => x * 1000),
      cpuMs: m.stepCpuSeconds.map((x) => x * 1000),
    });
  result.info = r;
  return result;
}

if (values.check || values.curve) {
  const py = findPython();
  if (!py) throw new Error("--check/--curve need a python3 with torch");
  const dir = mkdtempSync(join(tmpdir(), "llamarec-bench-baselines-"));
  try {
    for (const name of names.filter((n) => n !== "lru")) {
      if (values.check) checkGradients(py, name, dir);
      else lossCurve(py, name, Number(values.curve), dir);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  process.exit(0);
}

function callReference(py: string, dir: string, spec: unknown): Record<string, unknown> {
  const file = join(dir, "spec.json");
  writeFileSync(file, JSON.stringify(spec));
  const env = { ...process.env, OMP_NUM_THREADS: "1", OPENBLAS_NUM_THREADS: "1", MKL_NUM_THREADS: "1" };
  const out = execFileSync(py, [join(here, "baselines_reference.py"), file, "1"], {
    encoding: "utf8",
    maxBuffer: 256 * 2 ** 20,
    env,
  });
  return JSON.parse(out.trim().split("\n").pop()!) as Record<string, unknown>;
}

function checkGradients(py: string, name: string, dir: string): void {
  const model = createRetriever(name, { numItems: dataset.numItems, maxLen, seed: 7, dropout: 0 });
  const named = (model as unknown as { namedParameters(): Iterable<[string, WeightLike]> }).namedParameters();
  const params = [...named];
  // Off the near-zero init (deterministically) so that every path carries signal; padding rows stay 0.
  for (const [n, p] of params) {
    if (n.includes("layer_norm")) continue;
    for (let i = 0; i < p.data.length; i++) p.data[i] = p.data[i]! + 0.05 * Math.sin(i * 0.37 + n.length);
    if (n.endsWith("token.weight")) p.data.fill(0, 0, 64);
  }
  const batch = batchesOf.get(name)![0]!;
  model.setTraining(true);
  const loss = model.lossAndBackward(batch);
  // Evaluation rows of 32 users (the longest histories first: full windows), validation then test input each.
  const scoreUsers = evaluationUsers(dataset, "test")
    .sort((a, b) => (dataset.train[b]?.length ?? 0) - (dataset.train[a]?.length ?? 0) || a - b)
    .filter((_, i) => i % 19 === 0)
    .slice(0, 32);
  const scoreTokens = new Int32Array(scoreUsers.length * 2 * maxLen);
  let fullWindows = 0;
  scoreUsers.forEach((u, i) => {
    (["val", "test"] as const).forEach((split, j) => {
      const h = evaluationHistory(dataset, split, u);
      if (h.length >= maxLen) fullWindows++;
      encodeEvaluationRow(h, maxLen, scoreTokens, 2 * i + j);
    });
  });
  const r = callReference(py, dir, {
    gradients: true,
    settings: { numItems: dataset.numItems, batchSize, maxLen, dropout: 0, variant: "llamarec" },
    iterations: 1,
    models: [
      {
        name,
        batches: [{ tokens: Array.from(batch.tokens), labels: Array.from(batch.labels) }],
        weights: Object.fromEntries(params.map(([n, p]) => [n, Array.from(p.data)])),
        scoreTokens: Array.from(scoreTokens),
      },
    ],
  }) as { loss: number; grads: Record<string, number[]>; scores: number[] };
  console.log(`${name}: loss llamarec ${loss.toFixed(6)}, PyTorch ${r.loss.toFixed(6)}`);
  // Inference at validation and test lengths (test input = val input + the validation item; full windows
  // among them): the same scores, so the same ranks.
  const ours = model.scoreNext(scoreTokens, scoreUsers.length * 2, maxLen);
  let maxDiff = 0;
  let maxAbs = 0;
  let sameTop10 = 0;
  const V = dataset.numItems + 1;
  const top10 = (row: ArrayLike<number>) =>
    Array.from({ length: V - 1 }, (_, i) => i + 1)
      .sort((a, b) => row[b]! - row[a]! || a - b)
      .slice(0, 10)
      .join();
  for (let row = 0; row < scoreUsers.length * 2; row++) {
    const a = ours.subarray(row * V, (row + 1) * V);
    const b = r.scores.slice(row * V, (row + 1) * V);
    for (let i = 1; i < V; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
      maxAbs = Math.max(maxAbs, Math.abs(b[i]!));
    }
    if (top10(a) === top10(b)) sameTop10++;
  }
  console.log(
    `  inference scores of ${scoreUsers.length} users at validation and test inputs (${fullWindows} full windows): ` +
      `max |difference| ${maxDiff.toExponential(1)} (max |score| ${maxAbs.toExponential(1)}); same top-10 in ` +
      `${sameTop10} of ${scoreUsers.length * 2} rows`,
  );
  for (const [n, p] of params) {
    const g = p.grad!;
    const t = r.grads[n]!;
    let num = 0;
    let den = 0;
    // The padding row of the item table: llamarec keeps it at 0 (padding_idx everywhere); torch's padding_idx
    // only stops the input lookup's gradient, the output layer still trains row 0 (class 0 is ignored anyway).
    const skip = n.endsWith("token.weight") && name !== "narm" ? p.shape[1]! : 0;
    for (let i = skip; i < t.length; i++) {
      num += (g[i]! - t[i]!) ** 2;
      den += t[i]! ** 2;
    }
    const rel = Math.sqrt(num / Math.max(den, 1e-30));
    console.log(
      `  ${n.padEnd(60)} |grad| ${Math.sqrt(den).toExponential(2)}  relative difference ${rel.toExponential(1)}`,
    );
  }
}

function lossCurve(py: string, name: string, n: number, dir: string): void {
  const model = createRetriever(name, { numItems: dataset.numItems, maxLen, seed: 42, dropout });
  const params = model.parameters();
  const optimizer = new AdamW(params, { lr: 1e-3, weightDecay: 0.01, eps: 1e-9, noDecay: llamaRecNoDecay });
  const opts = { batchSize, maxLen, slidingWindow: 1, seed: 42 };
  const source = model.trainingBatches?.(dataset.train, opts) ?? new TrainingBatches(dataset.train, opts);
  const batches: SequenceBatch[] = [];
  const ours: number[] = [];
  for (let i = 0; i < n; i++) {
    const b = source.batch(Math.floor(i / source.batchesPerEpoch), i % source.batchesPerEpoch);
    batches.push(b);
    model.setTraining(true);
    optimizer.zeroGrad();
    ours.push(model.lossAndBackward(b));
    clipGradNorm(params, 5);
    optimizer.step();
  }
  const r = callReference(py, dir, {
    settings: { numItems: dataset.numItems, batchSize, maxLen, dropout, seed: 42, init: values.init },
    warmup: 0,
    iterations: n,
    models: [
      { name, batches: batches.map((b) => ({ tokens: Array.from(b.tokens), labels: Array.from(b.labels) })) },
    ],
  }) as { models: Record<string, { losses: number[] }> };
  const theirs = r.models[name]!.losses;
  const w = Math.max(1, Math.floor(n / 8));
  const mean = (xs: number[], i: number) =>
    xs.slice(i, i + w).reduce((a, b) => a + b, 0) / Math.min(w, xs.length - i);
  console.log(`\n${name}: mean training loss, same batches (reference init: ${values.init})`);
  console.log("| iterations | llamarec | PyTorch |\n|---|--:|--:|");
  for (let i = 0; i < n; i += w)
    console.log(
      `| ${i + 1}–${Math.min(n, i + w)} | ${mean(ours, i).toFixed(3)} | ${mean(theirs, i).toFixed(3)} |`,
    );
}

const python = values["no-reference"] ? null : findPython();
const dir = mkdtempSync(join(tmpdir(), "llamarec-bench-baselines-"));
const fmtLoad = () =>
  loadavg()
    .map((x) => x.toFixed(1))
    .join(" ");
const loadStart = fmtLoad();
const rows: {
  model: string;
  threads: number;
  ms: number;
  cpuMs: number;
  refMs: number | null;
  refCpuMs: number | null;
}[] = [];
let info: Reference | undefined;
try {
  for (const threads of threadList) {
    const ours = runLlamarec(threads);
    const ref = python ? runPytorch(python, threads, dir) : null;
    info ??= ref?.info;
    for (const name of names) {
      const o = ours.get(name)!;
      const r = ref?.get(name);
      rows.push({
        model: name,
        threads,
        ms: median(o.ms),
        cpuMs: median(o.cpuMs),
        refMs: r ? median(r.ms) : null,
        refCpuMs: r ? median(r.cpuMs) : null,
      });
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

if (values.json) {
  const torch = info ? { torch: info.torch, blas: info.blas, blasInfo: info.blasInfo } : null;
  console.log(JSON.stringify({ iterations, refIterations, loadStart, loadEnd: fmtLoad(), torch, rows }));
} else {
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  console.log(
    `${cpu}, ${cpus().length} cores. ml-latest-small, batch ${batchSize} × length ${maxLen}, d 64, dropout ${dropout}; ` +
      `llamarec ${iterations} steps per model (models interleaved), PyTorch ${refIterations}; load average at the start ${loadStart}, at the end ${fmtLoad()}`,
  );
  console.log(
    python
      ? info
        ? `PyTorch ${info.torch} (${info.blasInfo}); BLAS loaded: ${info.blas.join(", ") || "none found"}`
        : "PyTorch reference: no reference model among --models"
      : values["no-reference"]
        ? "PyTorch reference: not run (--no-reference)"
        : "PyTorch reference: not run (no python3 with torch found; --python or LLAMAREC_PYTHON)",
  );
  console.log(
    "\n| model | threads | llamarec ms/step | llamarec CPU ms | PyTorch ms/step | PyTorch CPU ms | llamarec faster (wall) | (CPU) |",
  );
  console.log("|---|--:|--:|--:|--:|--:|--:|--:|");
  const f = (x: number | null) => (x === null ? "–" : x.toFixed(0));
  const ratio = (a: number | null, b: number) => (a === null ? "–" : `×${(a / b).toFixed(2)}`);
  for (const r of rows)
    console.log(
      `| ${r.model} | ${r.threads} | ${f(r.ms)} | ${f(r.cpuMs)} | ${f(r.refMs)} | ${f(r.refCpuMs)} | ${ratio(r.refMs, r.ms)} | ${ratio(r.refCpuMs, r.cpuMs)} |`,
    );
  if (names.includes("lru"))
    console.log("\n(LRURec's PyTorch reference is in `npm run bench -- retriever`.)");
}
process.exit(0);
