/**
 * LRURec training step and full validation pass, llamarec against a PyTorch re-implementation of the official
 * code (bench/lru_reference.py), in the same run, at 1 and 2 threads, at two settings:
 *   ml:     ml-latest-small (bundled), batch 16 × length 200, d 64, 2 blocks, dropout 0.2;
 *   amazon: batch 64 × length 50 on a synthetic dataset of Amazon-Beauty size (22,363 users, 12,101 items,
 *           5–13 interactions per user: ~200k interactions; no Amazon data is bundled).
 * Both sides train on the very same batches and validate the same users. One step = zero grads → forward →
 * cross-entropy over all items → backward → clip grad norm 5 → AdamW. Validation = score every item for every
 * user (llamarec: its training-time validation, whole history excluded, pessimistic ties; PyTorch: the
 * official validate(), no exclusion, full argsort). Medians; per-step peak RSS; the load average.
 *
 *   npm run bench -- retriever [--settings ml,amazon] [--threads 1,2] [--iterations 20] [--eval-repeats 3]
 *     [--amazon-eval-users 4096] [--python python3] [--no-reference] [--memory-iterations 0]
 *     [--ab-iterations N] [--ab-eval-repeats N] [--json]
 *
 * With threads 1 and 2, llamarec's two configurations are also run alternately in one process (two models of the
 * same seed, one per backend, steps and validation passes in ABBA order: both see the same load), `--ab-iterations`
 * steps (default: --iterations; 0 skips it) and `--ab-eval-repeats` passes each: the 2-vs-1-thread comparison that
 * the machine's drift between configurations does not distort. It also checks that both give the same losses.
 *
 * The reference runs when a python3 with torch is found ($LLAMAREC_PYTHON, python3 on PATH, /usr/bin/python3).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { Dataset } from "../src/data/dataset.js";
import { loadDataset } from "../src/data/index.js";
import { syntheticDataset } from "../src/data/synthetic.js";
import {
  encodeEvaluationRow,
  evaluationHistory,
  evaluationLabel,
  evaluationUsers,
  TrainingBatches,
} from "../src/retrievers/batches.js";
import { evaluateSplit } from "../src/retrievers/evaluate.js";
import { createRetriever } from "../src/retrievers/registry.js";
import type { SequenceBatch } from "../src/retrievers/types.js";
import { llamaRecNoDecay } from "../src/retrievers/weight-decay.js";
import { whileHeld } from "../src/tensor/kernels/hold.js";
import { createWasmKernels, setKernels, type WasmKernels } from "../src/tensor/kernels/index.js";
import { AdamW } from "../src/tensor/optim/adamw.js";
import { clipGradNorm } from "../src/tensor/optim/clip.js";
import { median } from "./timing.js";

const { values } = parseArgs({
  options: {
    settings: { type: "string", default: "ml,amazon" },
    threads: { type: "string", default: "1,2" },
    iterations: { type: "string", default: "20" },
    "reference-iterations": { type: "string", default: "10" },
    "eval-repeats": { type: "string", default: "3" },
    "amazon-eval-users": { type: "string", default: "4096" },
    python: { type: "string" },
    "no-reference": { type: "boolean", default: false },
    "memory-iterations": { type: "string", default: "0" },
    "ab-iterations": { type: "string" },
    "ab-eval-repeats": { type: "string" },
    json: { type: "boolean", default: false },
  },
});

const here = dirname(fileURLToPath(import.meta.url));
// A full garbage collection before each llamarec configuration, so that its peak RSS does not include the
// previous configuration's model, arena and wasm heap (they are garbage by then, but not yet collected).
setFlagsFromString("--expose-gc");
const collectGarbage = runInNewContext("gc") as () => void;
const mb = (bytes: number) => bytes / 2 ** 20;

interface Setting {
  name: string;
  dataset: Dataset;
  describe: string;
  batchSize: number;
  maxLen: number;
  /** Validation users (all of them, or the first n for the big synthetic set). */
  evalUsers: number[];
}

async function setting(name: string): Promise<Setting> {
  if (name === "ml") {
    const { dataset } = await loadDataset({ name: "ml-latest-small" }, { noCache: true });
    return {
      name,
      dataset,
      describe: `ml-latest-small (${dataset.numUsers} users, ${dataset.numItems} items)`,
      batchSize: 16,
      maxLen: 200,
      evalUsers: evaluationUsers(dataset, "val"),
    };
  }
  if (name === "amazon") {
    const { dataset } = syntheticDataset({
      numUsers: 22_363,
      numItems: 12_101,
      numClusters: 200,
      minSeqLength: 5,
      maxSeqLength: 13,
      seed: 7,
    });
    const all = evaluationUsers(dataset, "val");
    const n = Math.min(all.length, Number(values["amazon-eval-users"]));
    return {
      name,
      dataset,
      describe: `synthetic Amazon-Beauty size (${dataset.numUsers} users, ${dataset.numItems} items; validation on ${n} of ${all.length} users)`,
      batchSize: 64,
      maxLen: 50,
      evalUsers: all.slice(0, n),
    };
  }
  throw new Error(`unknown setting ${name} (ml, amazon)`);
}

/** The dataset with only `users` keeping a validation item (what evaluateSplit evaluates). */
function restrictVal(dataset: Dataset, users: readonly number[]): Dataset {
  const keep = new Set(users);
  return { ...dataset, val: dataset.val.map((v, u) => (keep.has(u) ? v : 0)) };
}

interface SideResult {
  side: "llamarec" | "pytorch";
  threads: number;
  stepMs: number[];
  /** Process CPU time per step (all threads): less sensitive to other jobs than wall time. */
  cpuMs: number[];
  evalMs: number[];
  peakRssMb: number;
  extra?: Record<string, unknown>;
}

function trainingBatches(s: Setting, count: number): SequenceBatch[] {
  const batches = new TrainingBatches(s.dataset.train, {
    batchSize: s.batchSize,
    maxLen: s.maxLen,
    slidingWindow: 1,
    seed: 42,
  });
  return Array.from({ length: count }, (_, i) => batches.batch(0, i % batches.batchesPerEpoch));
}

/** A model of the bench's seed on its own backend, with its optimizer, step and validation pass. */
function llamarecSide(s: Setting, threads: number) {
  const kernels = createWasmKernels({ threads });
  setKernels(kernels);
  const model = createRetriever("lru", { numItems: s.dataset.numItems, seed: 42, dropout: 0.2 });
  const params = model.parameters();
  const opt = new AdamW(params, { lr: 1e-3, weightDecay: 0.01, eps: 1e-9, noDecay: llamaRecNoDecay });
  // One hold window per step, as the training loop runs it (src/training/loop.ts).
  const step = (b: SequenceBatch) =>
    whileHeld(() => {
      model.setTraining(true);
      opt.zeroGrad();
      const loss = model.lossAndBackward(b);
      clipGradNorm(params, 5);
      opt.step();
      return loss;
    });
  const valDataset = restrictVal(s.dataset, s.evalUsers);
  const validate = () =>
    evaluateSplit(model, valDataset, "val", {
      maxLen: s.maxLen,
      batchSize: s.batchSize,
      exclude: "full",
      tie: "pessimistic",
      candidateCount: 0,
    });
  return { kernels, model, step, validate };
}

const helperInfo = (k: WasmKernels) => ({
  helperCalls: k.helperCalls(),
  helperStalls: k.helperStalls(),
  helperSpinMs: k.helperSpinMs(),
  helperPreemptions: k.helperPreemptions(),
});

function runLlamarec(s: Setting, threads: number, batches: SequenceBatch[], iterations: number): SideResult {
  collectGarbage();
  const { kernels, step, validate } = llamarecSide(s, threads);
  step(batches[0]!); // warm-up: JIT, buffers
  step(batches[1 % batches.length]!);
  const stepMs: number[] = [];
  const cpuMs: number[] = [];
  let peakRss = 0;
  for (let i = 0; i < iterations; i++) {
    const c = process.cpuUsage();
    const t = performance.now();
    step(batches[(i + 1) % batches.length]!);
    stepMs.push(performance.now() - t);
    const u = process.cpuUsage(c);
    cpuMs.push((u.user + u.system) / 1000);
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
  }
  const evalMs: number[] = [];
  for (let r = 0; r < Number(values["eval-repeats"]); r++) {
    const t = performance.now();
    validate();
    evalMs.push(performance.now() - t);
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
  }
  const memoryIterations = Number(values["memory-iterations"]);
  let memory: Record<string, number> | undefined;
  if (memoryIterations > 0) {
    // Every batch of successive epochs (as training sees them): batches differ in their number of rows.
    const all = new TrainingBatches(s.dataset.train, {
      batchSize: s.batchSize,
      maxLen: s.maxLen,
      slidingWindow: 1,
      seed: 42,
    });
    const rss: number[] = [];
    const heap: number[] = [];
    const wasm: number[] = [];
    const t = performance.now();
    for (let i = 0; i < memoryIterations; i++) {
      step(all.batch(Math.floor(i / all.batchesPerEpoch), i % all.batchesPerEpoch));
      if (i % 100 === 99) {
        rss.push(mb(process.memoryUsage.rss()));
        heap.push(mb(process.memoryUsage().heapUsed));
        wasm.push(mb(kernels.memoryBytes()));
        // Progress on stderr, so that an interrupted long run still shows how far memory stayed flat.
        if (i % 1000 === 999) {
          process.stderr.write(
            `memory run: step ${i + 1}, ${((performance.now() - t) / 1000).toFixed(0)} s, RSS ${rss.at(-1)!.toFixed(0)} MB, JS heap ${heap.at(-1)!.toFixed(1)} MB, wasm heap ${wasm.at(-1)!.toFixed(0)} MB\n`,
          );
        }
      }
    }
    // RSS, JS heap and wasm heap at ten evenly spaced points of the run.
    const points = Array.from(
      { length: Math.min(10, rss.length) },
      (_, j) => Math.round(((j + 1) * rss.length) / Math.min(10, rss.length)) - 1,
    );
    memory = {
      iterations: memoryIterations,
      seconds: (performance.now() - t) / 1000,
      rssFirstMb: rss[0] ?? Number.NaN,
      rssLastMb: rss[rss.length - 1] ?? Number.NaN,
      rssMaxMb: Math.max(...rss),
      profile: points.map((j) => ({
        step: (j + 1) * 100,
        rssMb: Math.round(rss[j]!),
        jsHeapMb: Number(heap[j]!.toFixed(1)),
        wasmHeapMb: Math.round(wasm[j]!),
      })) as unknown as number,
    };
  }
  const helper = helperInfo(kernels);
  kernels.dispose();
  return {
    side: "llamarec",
    threads,
    stepMs,
    cpuMs,
    evalMs,
    peakRssMb: mb(peakRss),
    extra: {
      ...helper,
      wasmHeapMb: mb(kernels.memoryBytes()),
      ...(memory ? { memory } : {}),
    },
  };
}

interface Alternating {
  iterations: number;
  /** [1 thread, 2 threads]. */
  stepMs: [number[], number[]];
  evalMs: [number[], number[]];
  /** Both configurations gave the same loss at every step (they must: fixed decompositions). */
  sameLosses: boolean;
  helper: ReturnType<typeof helperInfo>;
}

/**
 * llamarec on 1 and 2 threads alternately in one process: two models of the same seed, one per backend, step i
 * of each back to back in ABBA order (then the validation passes the same way), so that both configurations see
 * the same machine.
 */
function runAlternating(
  s: Setting,
  batches: SequenceBatch[],
  iterations: number,
  evalRepeats: number,
): Alternating {
  collectGarbage();
  const sides = [llamarecSide(s, 1), llamarecSide(s, 2)] as const;
  const stepMs: [number[], number[]] = [[], []];
  const evalMs: [number[], number[]] = [[], []];
  const losses: [number[], number[]] = [[], []];
  const order = (i: number) => (i % 2 === 0 ? [0, 1] : [1, 0]) as (0 | 1)[];
  for (const j of [0, 1] as const) {
    setKernels(sides[j].kernels);
    sides[j].step(batches[0]!);
    sides[j].step(batches[1 % batches.length]!);
  }
  for (let i = 0; i < iterations; i++) {
    for (const j of order(i)) {
      setKernels(sides[j].kernels);
      const t = performance.now();
      losses[j].push(sides[j].step(batches[(i + 1) % batches.length]!));
      stepMs[j].push(performance.now() - t);
    }
  }
  for (let r = 0; r < evalRepeats; r++) {
    for (const j of order(r)) {
      setKernels(sides[j].kernels);
      const t = performance.now();
      sides[j].validate();
      evalMs[j].push(performance.now() - t);
    }
  }
  const helper = helperInfo(sides[1].kernels);
  for (const x of sides) x.kernels.dispose();
  return {
    iterations,
    stepMs,
    evalMs,
    sameLosses: losses[0].every((l, i) => Object.is(l, losses[1][i])),
    helper,
  };
}

function findPython(): string | null {
  const candidates = [values.python, process.env.LLAMAREC_PYTHON, "python3", "/usr/bin/python3"].filter(
    (c): c is string => typeof c === "string" && c !== "",
  );
  for (const py of candidates) {
    const r = spawnSync(py, ["-c", "import torch"], { stdio: "ignore" });
    if (r.status === 0) return py;
  }
  return null;
}

function runPytorch(
  python: string,
  s: Setting,
  threads: number,
  batches: SequenceBatch[],
  iterations: number,
  dir: string,
): SideResult {
  const tokens = new Int32Array(s.evalUsers.length * s.maxLen);
  s.evalUsers.forEach((u, r) => {
    encodeEvaluationRow(evaluationHistory(s.dataset, "val", u), s.maxLen, tokens, r);
  });
  const spec = {
    settings: {
      numItems: s.dataset.numItems,
      hiddenDim: 64,
      numBlocks: 2,
      dropout: 0.2,
      batchSize: s.batchSize,
      maxLen: s.maxLen,
    },
    trainBatches: batches.map((b) => ({ tokens: Array.from(b.tokens), labels: Array.from(b.labels) })),
    iterations,
    evalRepeats: Number(values["eval-repeats"]),
    val: {
      batchSize: s.batchSize,
      tokens: Array.from(tokens),
      labels: s.evalUsers.map((u) => evaluationLabel(s.dataset, "val", u)),
    },
  };
  const file = join(dir, `${s.name}.json`);
  writeFileSync(file, JSON.stringify(spec));
  const threadEnv = String(threads);
  const out = execFileSync(python, [join(here, "lru_reference.py"), file, threadEnv], {
    encoding: "utf8",
    maxBuffer: 64 * 2 ** 20,
    env: {
      ...process.env,
      OMP_NUM_THREADS: threadEnv,
      OPENBLAS_NUM_THREADS: threadEnv,
      MKL_NUM_THREADS: threadEnv,
    },
  });
  const r = JSON.parse(out.trim().split("\n").pop()!) as {
    torch: string;
    blas: string[];
    blasInfo: string;
    threads: number;
    stepSeconds: number[];
    stepCpuSeconds: number[];
    evalSeconds: number[];
    peakRssMb: number;
  };
  return {
    side: "pytorch",
    threads,
    stepMs: r.stepSeconds.map((x) => x * 1000),
    cpuMs: r.stepCpuSeconds.map((x) => x * 1000),
    evalMs: r.evalSeconds.map((x) => x * 1000),
    peakRssMb: r.peakRssMb,
    extra: { torch: r.torch, blas: r.blas, blasInfo: r.blasInfo, torchThreads: r.threads },
  };
}

const python = values["no-reference"] ? null : findPython();
const threadList = values.threads!.split(",").map(Number);
const iterations = Number(values.iterations);
const refIterations = Number(values["reference-iterations"]);
const dir = mkdtempSync(join(tmpdir(), "llamarec-bench-retriever-"));
const fmtLoad = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(" ");
const cpu = cpus()[0]?.model ?? "unknown CPU";
const report: {
  setting: string;
  describe: string;
  loadAfter: number[];
  results: SideResult[];
  alternating?: Alternating;
}[] = [];
const abIterations = Number(values["ab-iterations"] ?? iterations);
const abEvalRepeats = Number(values["ab-eval-repeats"] ?? values["eval-repeats"]);
const say = (lines: string[]) => {
  if (!values.json) process.stdout.write(`${lines.join("\n")}\n`);
};
say([`${cpu}, ${cpus().length} cores; load average (1, 5, 15 min) at the start: ${fmtLoad()}`]);
// Which kernels llamarec runs (native AVX2 overlay or pure wasm: LLAMAREC_KERNELS=wasm).
say([`llamarec kernels: ${createWasmKernels({ threads: 1 }).name}`]);
if (!python) {
  say([
    values["no-reference"]
      ? "PyTorch reference: not run (--no-reference)"
      : "PyTorch reference: not run (no python3 with torch found; --python or LLAMAREC_PYTHON)",
  ]);
}
let torchShown = false;
try {
  for (const name of values.settings!.split(",")) {
    const s = await setting(name);
    const batches = trainingBatches(s, Math.max(iterations, refIterations, abIterations) + 2);
    const results: SideResult[] = [];
    for (const threads of threadList) {
      // Interleaved per thread count, so that both sides see the same load.
      results.push(runLlamarec(s, threads, batches, iterations));
      if (python) results.push(runPytorch(python, s, threads, batches, refIterations, dir));
    }
    const alternating =
      threadList.includes(1) && threadList.includes(2) && abIterations > 0
        ? runAlternating(s, batches, abIterations, abEvalRepeats)
        : undefined;
    const r = { setting: name, describe: s.describe, loadAfter: loadavg(), results, alternating };
    report.push(r);
    const torchInfo = results.find((x) => x.side === "pytorch")?.extra;
    if (torchInfo && !torchShown) {
      torchShown = true;
      say([
        `PyTorch ${torchInfo.torch} (${torchInfo.blasInfo}); BLAS loaded: ${(torchInfo.blas as string[]).join(", ") || "none found"}`,
      ]);
    }
    say(settingLines(r));
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
if (values.json) process.stdout.write(`${JSON.stringify({ cpu, report }, null, 2)}\n`);

function settingLines(r: (typeof report)[number]): string[] {
  const lines: string[] = [];
  lines.push("", `## ${r.setting}: ${r.describe}`);
  lines.push("side      threads  step ms median [min–max]    CPU ms/step   validation pass ms   peak RSS MB");
  for (const x of r.results) {
    const range = `[${Math.min(...x.stepMs).toFixed(0)}–${Math.max(...x.stepMs).toFixed(0)}]`;
    lines.push(
      `${x.side.padEnd(9)} ${String(x.threads).padStart(7)}  ${median(x.stepMs).toFixed(1).padStart(10)} ${range.padEnd(15)}` +
        `${median(x.cpuMs).toFixed(1).padStart(10)}   ${median(x.evalMs).toFixed(0).padStart(18)}   ${x.peakRssMb.toFixed(0).padStart(11)}`,
    );
  }
  for (const threads of threadList) {
    const ours = r.results.find((x) => x.side === "llamarec" && x.threads === threads)!;
    const ref = r.results.find((x) => x.side === "pytorch" && x.threads === threads);
    if (ref) {
      lines.push(
        `${threads} thread(s): llamarec training step ×${(median(ref.stepMs) / median(ours.stepMs)).toFixed(2)} ` +
          `(CPU time ×${(median(ref.cpuMs) / median(ours.cpuMs)).toFixed(2)}), validation pass ` +
          `×${(median(ref.evalMs) / median(ours.evalMs)).toFixed(2)} faster than PyTorch`,
      );
    }
  }
  const one = r.results.find((x) => x.side === "llamarec" && x.threads === 1);
  const two = r.results.find((x) => x.side === "llamarec" && x.threads === 2);
  if (one && two) {
    lines.push(
      `llamarec 2 threads vs 1: training step ×${(median(one.stepMs) / median(two.stepMs)).toFixed(2)}, validation ×${(median(one.evalMs) / median(two.evalMs)).toFixed(2)}`,
    );
  }
  for (const x of r.results) {
    if (x.side === "llamarec" && x.threads === 2) {
      lines.push(
        `llamarec 2 threads: the helper thread took part in ${x.extra?.helperCalls} kernel calls; ${x.extra?.helperStalls} stalls (waits for a descheduled helper); it polled for calls ${Number(x.extra?.helperSpinMs ?? 0).toFixed(0)} ms and stopped polling ${x.extra?.helperPreemptions} times (preempted: a busy machine)`,
      );
    }
  }
  const a = r.alternating;
  if (a) {
    const [s1, s2] = a.stepMs;
    const [e1, e2] = a.evalMs;
    const pairs = (x: number[], y: number[]) => median(x.map((v, i) => v / y[i]!));
    const fmt = (x: number[]) => `${median(x).toFixed(1)} [min ${Math.min(...x).toFixed(1)}]`;
    lines.push(
      `llamarec 1 vs 2 threads alternating in one process (${a.iterations} steps, ${e1.length} validation passes each, ABBA order):`,
      `  training step ms, 1 thread ${fmt(s1)}, 2 threads ${fmt(s2)}: 2 threads ×${(median(s1) / median(s2)).toFixed(2)} (medians), ×${(Math.min(...s1) / Math.min(...s2)).toFixed(2)} (minima), ×${pairs(s1, s2).toFixed(2)} (median of the step pairs)`,
      ...(e1.length > 0
        ? [
            `  validation pass ms, 1 thread ${fmt(e1)}, 2 threads ${fmt(e2)}: 2 threads ×${(median(e1) / median(e2)).toFixed(2)} (medians), ×${(Math.min(...e1) / Math.min(...e2)).toFixed(2)} (minima)`,
          ]
        : []),
      `  same losses on 1 and 2 threads: ${a.sameLosses ? "yes" : "NO"}; helper thread: ${a.helper.helperCalls} calls, ${a.helper.helperStalls} stalls, polled ${a.helper.helperSpinMs.toFixed(0)} ms, stopped polling ${a.helper.helperPreemptions} times (preempted)`,
    );
  }
  for (const x of r.results) {
    const m = x.extra?.memory as Record<string, number> | undefined;
    if (m) {
      lines.push(
        `memory (${x.threads} thread(s)): ${m.iterations} steps in ${m.seconds!.toFixed(0)} s; RSS after 100 steps ${m.rssFirstMb!.toFixed(0)} MB, at the end ${m.rssLastMb!.toFixed(0)} MB, max ${m.rssMaxMb!.toFixed(0)} MB`,
      );
      const profile = m.profile as unknown as {
        step: number;
        rssMb: number;
        jsHeapMb: number;
        wasmHeapMb: number;
      }[];
      lines.push(`  step:         ${profile.map((p) => String(p.step).padStart(6)).join(" ")}`);
      lines.push(`  RSS MB:       ${profile.map((p) => String(p.rssMb).padStart(6)).join(" ")}`);
      lines.push(`  JS heap MB:   ${profile.map((p) => p.jsHeapMb.toFixed(1).padStart(6)).join(" ")}`);
      lines.push(`  wasm heap MB: ${profile.map((p) => String(p.wasmHeapMb).padStart(6)).join(" ")}`);
    }
  }
  lines.push(`load average after this setting: ${r.loadAfter.map((x) => x.toFixed(2)).join(" ")}`);
  return lines;
}
process.exit(0);
