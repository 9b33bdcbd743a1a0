// Efficiency of the verbalizer (the paper's Figure 3): `npm run bench -- efficiency [--lengths 5,10,20,30,40]
//   [--large-lengths 5,20,40] [--models tiny,large] [--d 1024] [--layers 8] [--heads 16] [--ffn 2816]
//   [--threads 1] [--runs 3] [--large-runs 1] [--gen-runs 1] [--engine-samples 3] [--engine-gen-full]
//   [--skip-engine] [--skip-cpp] [--svg docs/efficiency.svg] [--json file] [--merge earlier.json]`.
// Default run: the tiny model at 5 title lengths (verbalizer median of 3), the large one at 3 (one run each),
// which keeps it to minutes on an idle 2-core machine.
//
// For one model and the same prompts, the time to rank 20 candidates
//   (a) with the verbalizer: one forward pass over the prompt, the letters' next-token logits;
//   (b) by greedy generation of the ranked list of titles, as generation-based LLM recommenders do:
//       prompt processing, then greedy decoding of as many tokens as the 20 candidate titles have together
//       (a random-weight model never stops by itself, so the length is forced and EOS is banned),
// sweeping the average title length (tokens per title, history and candidates alike). The prompts are the
// product's LlamaRec prompts (PromptBuilder: 20 history titles, 20 candidates, titles up to 64 tokens,
// budget 4,096 tokens) over the bundled tiny Llama 2 tokenizer, titles made of single-token words.
//
// Runtimes: llama.cpp (node-llama-cpp; (a) through the product's LlamaCppBackend, (b) a second context on
// the same model with its KV cache, F16 KV on both) and our TypeScript engine ((a) EngineBackend; (b) greedy
// decoding with lastLogits — the engine has no KV cache, so each generated token re-runs the whole
// sequence). Models: the bundled tiny Llama 2 GGUF (d 8, 1 layer: overhead-dominated) and a random Llama
// written as an F32 GGUF (default d 1024, 8 layers, 16 heads, FFN 2816, vocabulary 32,000: compute-dominated).
// Engine generation on the large model is estimated (--engine-samples forwards at evenly spaced sequence
// lengths, the cost of every step interpolated linearly between them, summed); --engine-gen-full measures
// it step by step (hours at d 1024). On the tiny model it is measured and the estimate is printed beside it
// as a check. Both methods run back to back on the same prompt so machine load hits them alike.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import type { LlamaContextSequence, Token } from "node-llama-cpp";
import { GgufModel } from "../src/llm/gguf/model.js";
import { writeLlamaGguf } from "../src/llm/model/gguf-export.js";
import type { LlamaForCausalLM } from "../src/llm/model/llama.js";
import { loadLlama } from "../src/llm/model/load.js";
import { tokenizerFromGguf } from "../src/llm/tokenizer/gguf.js";
import type { Tokenizer } from "../src/llm/tokenizer/types.js";
import type { PromptIds } from "../src/ranker/backend.js";
import { EngineBackend } from "../src/ranker/backends/engine.js";
import { LlamaCppBackend } from "../src/ranker/backends/llamacpp.js";
import { PromptBuilder } from "../src/ranker/prompt.js";
import { Verbalizer } from "../src/ranker/verbalizer.js";
import { renderSvg } from "../src/report/charts.js";
import { writeFileAtomicSync } from "../src/util/atomic.js";
import { randomLlama, syntheticSpmVocab, tinyLlamaConfig } from "../test/fixtures/synthetic-llama.js";
import { median } from "./timing.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}
const num = (name: string, fallback: number) => Number(arg(name, String(fallback)));
const flag = (name: string) => process.argv.includes(name);

const lengths = arg("--lengths", "5,10,20,30,40").split(",").map(Number);
const largeLengths = arg("--large-lengths", "5,20,40").split(",").map(Number);
const models = arg("--models", "tiny,large").split(",");
const d = num("--d", 1024);
const layers = num("--layers", 8);
const heads = num("--heads", 16);
const ffn = num("--ffn", 2816);
// One llama.cpp thread by default: its workers busy-wait, which collapses under load on a shared machine.
const threads = num("--threads", 1);
const runs = num("--runs", 3);
const largeRuns = num("--large-runs", 1);
const genRuns = num("--gen-runs", 1);
const engineSamples = num("--engine-samples", 3);
const engineGenFull = flag("--engine-gen-full");
const skipEngine = flag("--skip-engine");
const skipCpp = flag("--skip-cpp");
const svgPath = arg("--svg", join(ROOT, "docs", "efficiency.svg"));
const jsonPath = arg("--json", "");
// Rows of an earlier run's --json added to this run's table and chart (e.g. the large model measured apart).
const mergePath = arg("--merge", "");
const CONTEXT = 4096;
const TINY_GGUF = join(ROOT, "models", "llama-2-tiny-random.gguf");

for (const l of [...lengths, ...largeLengths])
  if (!(Number.isInteger(l) && l >= 1 && l <= 64)) throw new Error(`--lengths: ${l} is not in 1..64`);

// ---------------------------------------------------------------------------------------------------------
// Prompts: titles of exactly L tokens from single-token words.

const WORDS =
  "love night star war story man day life world time king dark city house blood death girl dead lost last black little big return home money game music dream road white red blue green fire water heart moon sun sea river island mountain summer winter spring fall family friend brother sister father mother son daughter school party secret shadow light ghost angel devil power wild street town country land sky rain snow storm wind gold silver iron stone glass paper book letter song dance play show film picture face hand eye head mind soul body back side end first second third new old young good bad hot cold high low long short fast slow hard soft open close top bottom north south east west west"
    .split(" ")
    .filter((w, i, a) => a.indexOf(w) === i);

function singleTokenWords(tok: Tokenizer): string[] {
  const base = tok.encode("x", { addBos: false }).length;
  const words = WORDS.filter((w) => tok.encode(`x ${w}`, { addBos: false }).length === base + 1);
  if (words.length < 40) throw new Error(`only ${words.length} single-token words in this tokenizer`);
  return words;
}

/** A title of exactly `length` tokens (alone, without BOS), deterministic in `seed`. */
function title(tok: Tokenizer, words: string[], length: number, seed: number): string {
  const pick = (k: number) => words[(seed * 7919 + k * 104729 + ((seed * k) % 13)) % words.length]!;
  const parts = [pick(0).replace(/^./, (c) => c.toUpperCase())];
  for (let k = 1; tok.encode(parts.join(" "), { addBos: false }).length < length; k++) parts.push(pick(k));
  while (parts.length > 1 && tok.encode(parts.join(" "), { addBos: false }).length > length) parts.pop();
  return parts.join(" ");
}

interface BenchPrompt {
  length: number;
  /** Mean tokens per candidate title as tokenized alone. */
  titleTokens: number;
  /** Tokens to generate: the 20 candidate titles together. */
  generate: number;
  /** One prompt per run (different titles, same lengths), so no prefix cache helps beyond the template. */
  variants: PromptIds[];
}

function buildPrompts(tok: Tokenizer, length: number, count: number): BenchPrompt {
  const words = singleTokenWords(tok);
  const builder = new PromptBuilder(tok, { maxTitleTokens: 64, maxPromptTokens: CONTEXT });
  const verbalizer = Verbalizer.forPrompt(builder);
  const variants: PromptIds[] = [];
  let generate = 0;
  let titleTokens = 0;
  for (let v = 0; v < count; v++) {
    const history = Array.from({ length: 20 }, (_, i) => title(tok, words, length, 1000 * v + i));
    const candidates = Array.from({ length: 20 }, (_, i) => title(tok, words, length, 1000 * v + 500 + i));
    const built = builder.build({ history, candidates });
    if (built.historyUsed !== 20) throw new Error(`prompt at title length ${length} lost history items`);
    variants.push({ ids: built.ids, letterIds: verbalizer.ids });
    if (v === 0) {
      const counts = candidates.map((t) => tok.encode(t, { addBos: false }).length);
      generate = counts.reduce((a, b) => a + b, 0);
      titleTokens = generate / counts.length;
    }
  }
  return { length, titleTokens, generate, variants };
}

// ---------------------------------------------------------------------------------------------------------
// Runtimes.

interface Timing {
  verbalizer: number;
  generation: number;
  /** Engine generation summed from sampled forwards instead of measured step by step. */
  estimated: boolean;
  /** Tiny model only: the sampled estimate beside the measured generation, as a check. */
  estimateCheck?: number;
}

async function timeMs(fn: () => Promise<unknown> | unknown): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** llama.cpp: (a) the product backend; (b) greedy decoding on a second context of the same model. */
async function llamaCppRuntime(modelPath: string) {
  const backend = await LlamaCppBackend.open({ modelPath, threads, sequences: 1, contextSize: CONTEXT });
  const context = await backend.model.createContext({
    contextSize: CONTEXT,
    sequences: 1,
    batchSize: 512,
    threads,
    flashAttention: false,
  });
  const seq: LlamaContextSequence = context.getSequence();
  const { TokenBias } = await import("node-llama-cpp");
  const eos = backend.model.tokens.eos;
  const bias = eos === null ? undefined : new TokenBias(backend.model.tokenizer).set(eos, "never");
  return {
    name: "llama.cpp",
    verbalize: (p: PromptIds) => backend.scorePrompts([p]),
    async generate(p: PromptIds, n: number): Promise<number> {
      await seq.clearHistory();
      let produced = 0;
      const t0 = performance.now();
      for await (const _ of seq.evaluate(p.ids as Token[], {
        temperature: 0,
        ...(bias ? { tokenBias: bias } : {}),
      })) {
        if (++produced >= n) break;
      }
      const ms = performance.now() - t0;
      if (produced < n) throw new Error(`llama.cpp stopped after ${produced} of ${n} tokens`);
      return ms;
    },
    async close() {
      await context.dispose();
      await backend.close();
    },
  };
}

function argmaxExcept(logits: Float32Array, banned: number | null): number {
  let best = banned === 0 ? 1 : 0;
  for (let i = 0; i < logits.length; i++) if (i !== banned && logits[i]! > logits[best]!) best = i;
  return best;
}

/** Our engine: (a) EngineBackend; (b) greedy decoding by repeated full forwards (no KV cache). */
function engineRuntime(model: LlamaForCausalLM) {
  const backend = new EngineBackend(model);
  const eos = model.config.eosTokenId ?? null;
  return {
    name: "engine",
    verbalize: (p: PromptIds) => backend.scorePrompts([p]),
    generateFull(p: PromptIds, n: number): number {
      const ids = [...p.ids];
      const t0 = performance.now();
      for (let s = 0; s < n; s++) ids.push(argmaxExcept(model.lastLogits(Int32Array.from(ids)), eos));
      return performance.now() - t0;
    },
    /** Sum over the n steps of one forward each, interpolated from `k` timed forwards. */
    generateEstimate(p: PromptIds, n: number, k: number): number {
      const filler = p.ids.slice(p.ids.length - n);
      const points: Array<[number, number]> = [];
      for (let j = 0; j < k; j++) {
        const step = k === 1 ? 0 : Math.round((j * (n - 1)) / (k - 1));
        const ids = Int32Array.from([...p.ids, ...filler.slice(0, step)]);
        // Short forwards (small models) are timed three times and the median kept: load spikes dominate them.
        const times: number[] = [];
        do {
          const t0 = performance.now();
          model.lastLogits(ids);
          times.push(performance.now() - t0);
        } while (times.length < 3 && times[0]! < 200);
        points.push([step, median(times)]);
      }
      let total = 0;
      for (let s = 0; s < n; s++) {
        let j = 0;
        while (j < points.length - 2 && points[j + 1]![0] < s) j++;
        const [x0, y0] = points[j]!;
        const [x1, y1] = points[Math.min(j + 1, points.length - 1)]!;
        total += x1 === x0 ? y0 : y0 + ((y1 - y0) * (s - x0)) / (x1 - x0);
      }
      return total;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------

interface Row {
  model: string;
  runtime: string;
  length: number;
  titleTokens: number;
  promptTokens: number;
  generated: number;
  timing: Timing;
}

function fmtS(ms: number): string {
  const s = ms / 1000;
  return s >= 100 ? s.toFixed(0) : s >= 10 ? s.toFixed(1) : s >= 0.1 ? s.toFixed(2) : s.toFixed(3);
}

async function benchModel(
  label: string,
  modelPath: string,
  engineModel: () => LlamaForCausalLM,
  tok: Tokenizer,
  lengths: number[],
  runs: number,
) {
  const rows: Row[] = [];
  const prompts = lengths.map((l) => buildPrompts(tok, l, Math.max(runs, genRuns) + 1));
  if (!skipCpp) {
    const cpp = await llamaCppRuntime(modelPath);
    try {
      await cpp.verbalize(prompts[0]!.variants.at(-1)!); // warm-up
      for (const p of prompts) {
        const verb: number[] = [];
        const gen: number[] = [];
        for (let r = 0; r < runs; r++) verb.push(await timeMs(() => cpp.verbalize(p.variants[r]!)));
        for (let r = 0; r < genRuns; r++) gen.push(await cpp.generate(p.variants[r]!, p.generate));
        const row: Row = {
          model: label,
          runtime: "llama.cpp",
          length: p.length,
          titleTokens: p.titleTokens,
          promptTokens: p.variants[0]!.ids.length,
          generated: p.generate,
          timing: { verbalizer: median(verb), generation: median(gen), estimated: false },
        };
        rows.push(row);
        printRow(row);
      }
    } finally {
      await cpp.close();
    }
  }
  if (!skipEngine) {
    const engine = engineRuntime(engineModel());
    const full = engineGenFull || label === "tiny";
    await engine.verbalize(prompts[0]!.variants.at(-1)!); // warm-up
    for (const p of prompts) {
      const verb: number[] = [];
      for (let r = 0; r < runs; r++) verb.push(await timeMs(() => engine.verbalize(p.variants[r]!)));
      const v = p.variants[0]!;
      const timing: Timing = full
        ? {
            verbalizer: median(verb),
            generation: engine.generateFull(v, p.generate),
            estimated: false,
            estimateCheck: engine.generateEstimate(v, p.generate, engineSamples),
          }
        : {
            verbalizer: median(verb),
            generation: engine.generateEstimate(v, p.generate, engineSamples),
            estimated: true,
          };
      const row: Row = {
        model: label,
        runtime: "engine",
        length: p.length,
        titleTokens: p.titleTokens,
        promptTokens: v.ids.length,
        generated: p.generate,
        timing,
      };
      rows.push(row);
      printRow(row);
    }
  }
  return rows;
}

function printRow(r: Row): void {
  const t = r.timing;
  console.log(
    `${r.model} ${r.runtime.padEnd(9)} title ${String(r.length).padStart(2)} tok: prompt ${r.promptTokens}, ` +
      `verbalizer ${fmtS(t.verbalizer)} s, generation of ${r.generated} tokens ${fmtS(t.generation)} s` +
      `${t.estimated ? " (estimated)" : ""}${t.estimateCheck === undefined ? "" : ` (sampled estimate ${fmtS(t.estimateCheck)} s)`}` +
      `, ratio ×${(t.generation / t.verbalizer).toFixed(0)}`,
  );
}

function markdown(rows: Row[]): string {
  const lines = [
    "| model | runtime | title tokens | prompt tokens | generated tokens | verbalizer (s) | generation (s) | generation / verbalizer |",
    "|---|---|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of rows) {
    const t = r.timing;
    lines.push(
      `| ${r.model} | ${r.runtime} | ${r.titleTokens.toFixed(0)} | ${r.promptTokens} | ${r.generated} | ${fmtS(t.verbalizer)} | ${fmtS(t.generation)}${t.estimated ? " (est.)" : ""} | ×${(t.generation / t.verbalizer).toFixed(0)} |`,
    );
  }
  return lines.join("\n");
}

function chart(rows: Row[], labels: string[]): string {
  const n = labels.length;
  const gap = 6;
  const width = (100 - gap * (n + 1)) / n;
  const grids = labels.map((_, i) => ({
    left: `${gap + i * (width + gap) + 2}%`,
    width: `${width - 2}%`,
    top: 80,
    bottom: 60,
  }));
  const styles: Record<string, { color: string; dash: "solid" | "dashed" }> = {
    "llama.cpp verbalizer": { color: "#0072B2", dash: "solid" },
    "llama.cpp generation": { color: "#0072B2", dash: "dashed" },
    "engine verbalizer": { color: "#D55E00", dash: "solid" },
    "engine generation": { color: "#D55E00", dash: "dashed" },
  };
  const series = labels.flatMap((label, gi) =>
    Object.entries(styles).flatMap(([name, style]) => {
      const [runtime, method] = name.split(" ") as [string, "verbalizer" | "generation"];
      const pts = rows
        .filter((r) => r.model === label && r.runtime === runtime)
        .map((r) => [r.length, r.timing[method] / 1000]);
      if (pts.length === 0) return [];
      return [
        {
          type: "line" as const,
          name,
          xAxisIndex: gi,
          yAxisIndex: gi,
          data: pts,
          symbol: method === "verbalizer" ? "circle" : "triangle",
          symbolSize: 7,
          lineStyle: { width: 2, type: style.dash, color: style.color },
          itemStyle: { color: style.color },
        },
      ];
    }),
  );
  return renderSvg(
    {
      title: {
        text: "Time to rank 20 candidates: verbalizer vs generating the titles",
        left: "center",
        top: 6,
        textStyle: { fontSize: 15, fontWeight: "bold" },
      },
      legend: { top: 32, data: Object.keys(styles) },
      grid: grids,
      xAxis: labels.map((label, gi) => ({
        type: "value" as const,
        gridIndex: gi,
        name: `average title length (tokens) — ${label}`,
        nameLocation: "middle" as const,
        nameGap: 28,
        min: 0,
        max: Math.max(...lengths, ...largeLengths) + 5,
      })),
      yAxis: labels.map((_, gi) => ({
        type: "log" as const,
        gridIndex: gi,
        name: "seconds (log)",
        nameLocation: "middle" as const,
        nameGap: 46,
      })),
      series,
    },
    { width: 560 * n, height: 460 },
  );
}

// ---------------------------------------------------------------------------------------------------------

const tinyPath = TINY_GGUF;
if (!existsSync(tinyPath)) throw new Error(`${tinyPath} not found (the bundled tiny Llama 2 GGUF)`);
const g = GgufModel.open(tinyPath);
const tok = tokenizerFromGguf(g.file);
g.close();
console.log(
  `efficiency: title lengths ${lengths.join(",")} (tiny), ${largeLengths.join(",")} (large); llama.cpp ${threads} thread(s), engine LLAMAREC_THREADS=${process.env.LLAMAREC_THREADS ?? "default"}; verbalizer median of ${runs} (tiny) / ${largeRuns} (large), generation median of ${genRuns}`,
);
const all: Row[] = [];
const labels: string[] = [];
if (mergePath) {
  const earlier = JSON.parse(readFileSync(mergePath, "utf8")) as { rows: Row[] };
  for (const r of earlier.rows) {
    all.push(r);
    if (!labels.includes(r.model)) labels.push(r.model);
  }
}
const dir = mkdtempSync(join(tmpdir(), "llamarec-bench-eff-"));
try {
  if (models.includes("tiny")) {
    labels.push("tiny");
    console.log(`model tiny: ${tinyPath} (d 8, 1 layer, vocab 32000)`);
    all.push(...(await benchModel("tiny", tinyPath, () => loadLlama(tinyPath), tok, lengths, runs)));
  }
  if (models.includes("large")) {
    const label = `d ${d}, ${layers} layers`;
    labels.push(label);
    const config = tinyLlamaConfig({
      vocabSize: 32000,
      hiddenSize: d,
      intermediateSize: ffn,
      numLayers: layers,
      numHeads: heads,
      numKvHeads: heads,
      headDim: d / heads,
      maxPositionEmbeddings: CONTEXT,
    });
    const model = randomLlama(config, 1, 0.02);
    const path = join(dir, "large.gguf");
    writeLlamaGguf(path, model, { tokenizer: syntheticSpmVocab(config.vocabSize) });
    console.log(`model ${label}: heads ${heads}, FFN ${ffn}, vocab 32000, F32, random weights`);
    all.push(...(await benchModel(label, path, () => model, tok, largeLengths, largeRuns)));
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(`\n${markdown(all)}\n`);
for (const label of labels) {
  for (const runtime of ["llama.cpp", "engine"]) {
    const r = all.find((x) => x.model === label && x.runtime === runtime && x.length === 20);
    if (r)
      console.log(
        `ratio at title length 20, ${label}, ${runtime}: generation ${fmtS(r.timing.generation)} s / verbalizer ${fmtS(r.timing.verbalizer)} s = ×${(r.timing.generation / r.timing.verbalizer).toFixed(0)}`,
      );
  }
}
if (svgPath) {
  mkdirSync(dirname(svgPath), { recursive: true });
  writeFileAtomicSync(svgPath, chart(all, labels));
  console.log(`chart: ${svgPath}`);
}
if (jsonPath)
  writeFileSync(
    jsonPath,
    `${JSON.stringify({ lengths, largeLengths, threads, runs, largeRuns, genRuns, rows: all }, null, 2)}\n`,
  );
