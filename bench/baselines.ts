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
import { TrainingBatches } from "../src/retrievers/batches.js";
import { createRetriever } from "../src/retrievers/registry.js";
import type { SequenceBatch } from "../src/retrievers/types.js";
import { llamaRecNoDecay } from "../src/retrievers/weight-decay.js";
import { createWasmKernels, setKernels } from "../src/tensor/kernels/index.js";
import { AdamW } from "../src/tensor/optim/adamw.js";
import { clipGradNorm } from "../src/tensor/optim/clip.js";

const { values } = parseArgs({
  options: {
    iterations: { type: "string", default: "20" },
    "reference-iterations": { type: "string", default: "10" },
    threads: { type: "string", default: process.env.LLAMAREC_THREADS ?? "1" },
    models: { type: "string", default: "lru,sasrec,bert4rec,narm" },
    python: { type: "string" },
    "no-reference": { type: "boolean", default: false },
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

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

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
