// Serving load test: `npm run bench -- serve [--run <run>] [--duration 10] [--min-requests 600] [--rates 100,200,400]
//   [--rank-rate 20] [--threads 1] [--batch-window-ms n] [--batch-size n] [--items 1000000] [--catalogue-rates 10,20]
//   [--skip-retrieval] [--skip-rank] [--skip-catalogue] [--skip-fault] [--skip-autocannon]`
//
// Everything on 127.0.0.1, bounded (each load step runs --duration seconds, or longer to send --min-requests,
// after a 2 s warm-up). Load is open-loop at a fixed rate (bench/serve-load.ts: request i due at i / rate,
// latency from its due time, every request counted); one same-run line repeats GET /healthz through
// autocannon's `overallRate`, the previous method, for comparison. The server is a separate process (`llamarec serve`, from source):
//   1. retrieval only on a trained run (default: LRURec trained 1 iteration on the bundled ml-latest-small,
//      which has the real catalogue size; weights do not change latency): POST /v1/recommend {user_id}
//      at each rate for random users of the dataset, whose states were built once before (warm cache); baseline in the same run: GET /healthz at the same rate (HTTP + loopback floor);
//      POST /v1/events (durable SQLite writes) at the first rate;
//   2. with LLM ranking on the bundled tiny GGUF (models/llama-2-tiny-random.gguf) through llama.cpp at
//      --rank-rate, default 20 requests/s: every answer ranked or falling back (counted);
//   3. retrieval over a synthetic catalogue of --items items, d 64 (bench/serve-catalogue.ts), with
//      in-process same-run baselines: the SIMD catalogue scorer vs the general GEMM path, and the
//      incremental state update vs recomputing the state from a 150- and a 1,000-item history;
//   4. the fault scenario (bench/serve-fault.ts): kill -9 while posting events, restart, check.
// Prints a Markdown table; goals (issue 11): retrieval p99 < 20 ms at 200/s, ranking p99 < 100 ms at 20/s,
// 1M-item retrieval p99 < 50 ms.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { GROUPS } from "../src/cli/commands/index.js";
import { trainRetrieverCommand } from "../src/cli/commands/train-retriever.js";
import { runCli } from "../src/cli/program.js";
import { CatalogueScorer } from "../src/retrievers/catalogue-scorer.js";
import { topItems } from "../src/retrievers/evaluate.js";
import { LruRec } from "../src/retrievers/lru.js";
import { LruIncremental } from "../src/retrievers/lru-state.js";
import { add } from "../src/tensor/ops/elementwise.js";
import { matmul } from "../src/tensor/ops/matmul.js";
import { Tensor } from "../src/tensor/tensor.js";
import { faultScenario, postJson, type ServeChild, startListening, startServe } from "./serve-fault.js";
import { type LoadResult, openLoop } from "./serve-load.js";
import { median, timeCalls } from "./timing.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}
const flag = (name: string) => process.argv.includes(name);
const duration = Number(arg("--duration", "10"));
// Each step runs at least this many requests (longer than --duration at low rates), so that p99 is not
// just the slowest one or two answers.
const minRequests = Number(arg("--min-requests", "600"));
const rates = arg("--rates", "100,200,400").split(",").map(Number);
const rankRate = Number(arg("--rank-rate", "20"));
const items = Number(arg("--items", "1000000"));
const catalogueRates = arg("--catalogue-rates", "10,20").split(",").map(Number);

interface Row {
  scenario: string;
  rate: number;
  result: LoadResult;
  cpuMs: number;
  extra?: string;
}
const rows: Row[] = [];
let inProcess = "";
let autocannonNote = "";
const ms = (x: number) => (x < 10 ? x.toFixed(1) : x.toFixed(0));

async function step(
  scenario: string,
  url: string,
  rate: number,
  method: "GET" | "POST",
  path: string,
  body?: () => unknown,
  extra?: () => Promise<string>,
) {
  await openLoop({ url, rate, seconds: 2, method, path, ...(body ? { body } : {}) }); // warm-up
  // Server CPU seconds per request: what a request costs, whatever else the machine is running.
  // This read also resets the server's event-loop delay histogram (prom-client), so the read after the
  // step gives the step's own: its max is the longest stall of the server's main thread (GC, sync work).
  const before = await metricsText(url);
  const seconds = Math.max(duration, Math.ceil(minRequests / rate));
  const result = await openLoop({ url, rate, seconds, method, path, ...(body ? { body } : {}) });
  const after = await metricsText(url);
  const delta = (name: string) => sumOf(after, name) - sumOf(before, name);
  const cpuMs = (delta("llamarec_process_cpu_seconds_total") * 1000) / Math.max(1, result.finished);
  const major = 'llamarec_nodejs_gc_duration_seconds_count{kind="major"}';
  const majorMs = delta('llamarec_nodejs_gc_duration_seconds_sum{kind="major"}') * 1000;
  const server = `server event-loop delay max ${ms(sumOf(after, "llamarec_nodejs_eventloop_lag_max_seconds") * 1000)} ms; major GCs ${delta(major)} (${ms(majorMs)} ms)`;
  const more = extra ? await extra() : "";
  rows.push({ scenario, rate, result, cpuMs, extra: more ? `${server}; ${more}` : server });
  const l = result.latency;
  console.error(
    `${scenario} @ ${rate}/s: ${result.achieved.toFixed(1)} req/s (${result.finished}/${result.sent}), p50 ${ms(l.p50)} ms, p99 ${ms(l.p99)} ms, max ${ms(l.max)} ms, send lag p99 ${ms(result.sendLag.p99)} ms, server CPU ${cpuMs.toFixed(2)} ms/request, non-2xx ${result.non2xx}, errors ${result.errors + result.timeouts}`,
  );
}

/**
 * The previous method, for comparison in the same run: autocannon 9 `overallRate` (see bench/serve-load.ts).
 * Also records when each answer came (ms since the start, mod 1000: autocannon refills its budgets each
 * second from the start) and each answer's own time, to separate its burst pacing from its histogram.
 */
async function autocannonStep(url: string, rate: number) {
  const t0 = performance.now();
  const instance = autocannon({
    url,
    connections: Math.max(4, Math.min(64, Math.ceil(rate / 10))),
    duration,
    overallRate: rate,
    timeout: 10,
    requests: [{ method: "GET", path: "/healthz" }],
  });
  const firstHalf: boolean[] = [];
  const own: number[] = [];
  instance.on("response", (_client: unknown, _status: number, _bytes: number, time: number) => {
    firstHalf.push((performance.now() - t0) % 1000 < 500);
    own.push(time);
  });
  const r = await instance;
  own.sort((x, y) => x - y);
  const ownP99 = own.length ? own[Math.ceil(0.99 * own.length) - 1]! : Number.NaN;
  const early = (100 * firstHalf.filter(Boolean).length) / Math.max(1, firstHalf.length);
  const line = `GET /healthz at ${rate}/s through autocannon 9 \`overallRate\` (the previous method), same server, same run: reported p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms from ${r.latency.totalCount} histogram samples for ${own.length} answers (its coordinated-omission correction with a 1 ms interval); the answers' own times: p99 ${ms(ownP99)} ms; ${early.toFixed(0)}% of the answers in the first half of each second (even pacing: 50%)`;
  console.error(line);
  return line;
}
interface AutocannonResult {
  latency: { p50: number; p99: number; totalCount: number };
  requests: { total: number };
}
type AutocannonInstance = Promise<AutocannonResult> & {
  on(event: "response", f: (client: unknown, status: number, bytes: number, time: number) => void): void;
};
const autocannon = createRequire(import.meta.url)("autocannon") as (
  opts: Record<string, unknown>,
) => AutocannonInstance;

async function stop(s: ServeChild) {
  s.child.kill("SIGTERM");
  await s.exited;
}

async function metricsText(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`)).text();
}

/** Sum of the samples whose line starts with `name` (a metric name, or a name with its labels). */
function sumOf(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split("\n")) if (line.startsWith(name)) sum += Number(line.split(" ").pop());
  return sum;
}

async function metric(url: string, name: string): Promise<number> {
  return sumOf(await metricsText(url), name);
}

const work = mkdtempSync(join(tmpdir(), "llamarec-bench-serve-"));
try {
  // A run with the real ml-latest-small catalogue (training quality does not matter for latency).
  let runDir = arg("--run", "");
  if (!runDir) {
    runDir = join(work, "run");
    console.error("training a 1-iteration LRURec on ml-latest-small for the catalogue ...");
    const code = await runCli(
      [
        "train",
        "retriever",
        "--dataset",
        "ml-latest-small",
        "--run",
        runDir,
        "--max-iterations",
        "1",
        "--val-every",
        "1",
        "-q",
      ],
      [trainRetrieverCommand],
      GROUPS,
      { stdout: process.stderr, stderr: process.stderr },
    );
    if (code !== 0) throw new Error("training the bench run failed");
  }
  const users = Array.from({ length: 610 }, (_, i) => String(i + 1));
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(Math.random() * xs.length)]!;

  // 1. Retrieval only.
  const store = `sqlite:${join(work, "events.sqlite")}`;
  let s = await startServe(["--run", runDir, "--store", store, "--ranker", "none", "-q"]);
  const catalogueIds: string[] = [];
  for (let i = 0; catalogueIds.length < 200 && i < 5000; i++) {
    const r = await fetch(`${s.url}/v1/items/${i}`);
    if (r.status === 200) catalogueIds.push(String(i));
  }
  // Every user's state built once (a server keeps its active users' states; the cold rebuild is timed in 3.).
  if (!flag("--skip-retrieval")) {
    for (const u of users) await postJson(`${s.url}/v1/recommend`, { user_id: u, rank: false });
    for (const rate of rates) await step("GET /healthz (baseline)", s.url, rate, "GET", "/healthz");
    if (!flag("--skip-autocannon"))
      autocannonNote = await autocannonStep(s.url, rates.includes(200) ? 200 : rates[0]!);
    for (const rate of rates) {
      await step("recommend, retrieval only", s.url, rate, "POST", "/v1/recommend", () => ({
        user_id: pick(users),
        k: 10,
        rank: false,
      }));
    }
    await step("events (durable write)", s.url, rates[0]!, "POST", "/v1/events", () => ({
      user_id: pick(users),
      item_id: pick(catalogueIds),
    }));
  }
  await stop(s);

  // 2. With LLM ranking on the bundled tiny GGUF through llama.cpp.
  if (!flag("--skip-rank")) {
    s = await startServe([
      "--run",
      runDir,
      "--store",
      store,
      "--ranker",
      "llamacpp",
      "--ranker-model",
      join(ROOT, "models/llama-2-tiny-random.gguf"),
      "--threads",
      arg("--threads", "1"),
      // The server's defaults unless given.
      ...(flag("--batch-window-ms") ? ["--batch-window-ms", arg("--batch-window-ms", "")] : []),
      ...(flag("--batch-size") ? ["--batch-size", arg("--batch-size", "")] : []),
      "-q",
    ]);
    for (const u of users) await postJson(`${s.url}/v1/recommend`, { user_id: u, rank: false });
    const before = await metric(s.url, "llamarec_ranker_fallbacks_total");
    await step(
      "recommend + LLM ranking (tiny GGUF, llama.cpp)",
      s.url,
      rankRate,
      "POST",
      "/v1/recommend",
      () => ({ user_id: pick(users), k: 10 }),
      async () => {
        const fallbacks = (await metric(s.url, "llamarec_ranker_fallbacks_total")) - before;
        const batches = await metric(s.url, "llamarec_ranking_batch_size_count");
        const prompts = await metric(s.url, "llamarec_ranking_batch_size_sum");
        return `fallbacks ${fallbacks}; mean batch ${(prompts / Math.max(1, batches)).toFixed(2)} prompts`;
      },
    );
    await stop(s);
  }

  // 3. Catalogue scale.
  if (!flag("--skip-catalogue")) {
    // In a function: its 1M-item model and scorers are garbage before the load steps below (this process
    // is the load generator; a large heap here would add GC pauses to its send times).
    inProcess = inProcessBaselines();
    // In a fresh process, so that nothing else is on its heap.
    const gcLine = execFileSync(
      process.execPath,
      ["--import", "tsx", join(ROOT, "bench/serve-catalogue.ts"), "--items", String(items), "--gc-compare"],
      { cwd: ROOT, encoding: "utf8" },
    ).trim();
    inProcess = `${inProcess}\n${gcLine}`;
    console.error(inProcess);

    const dir = join(work, "catalogue");
    mkdirSync(dir);
    const c = await startListening(
      [join(ROOT, "bench/serve-catalogue.ts"), "--items", String(items), "--dir", dir],
      600_000,
    );
    const catUsers = Array.from({ length: 50 }, (_, i) => `cat-${i}`);
    for (const u of catUsers) {
      await postJson(`${c.url}/v1/events`, {
        events: Array.from({ length: 20 }, () => ({
          user_id: u,
          item_id: String(1 + Math.floor(Math.random() * items)),
        })),
      });
    }
    // Every user's state built once, as in 1.
    for (const u of catUsers) await postJson(`${c.url}/v1/recommend`, { user_id: u, k: 10 });
    for (const rate of catalogueRates) {
      await step(
        `recommend over ${items.toLocaleString("en-US")} items (d 64)`,
        c.url,
        rate,
        "POST",
        "/v1/recommend",
        () => ({ user_id: pick(catUsers), k: 10 }),
      );
    }
    await stop(c);
  }

  // 4. Fault scenario.
  let fault = "";
  if (!flag("--skip-fault")) {
    const r = await faultScenario({
      runDir,
      store: `sqlite:${join(work, "fault.sqlite")}`,
      items: catalogueIds,
      killAfter: 300,
    });
    fault = `kill -9 after ${r.acknowledged} acknowledged events (4 writers): ${r.found}/${r.acknowledged} found in order after restart, ${r.unacknowledged} committed-but-unacknowledged, restart to ready ${(r.restartMs / 1000).toFixed(1)} s, SIGTERM exit ${r.sigtermExit}, problems: ${r.problems.length === 0 ? "none" : r.problems.join("; ")}`;
    console.error(fault);
  }

  console.log(
    "\n| scenario | target rate (req/s) | achieved (req/s) | p50 (ms) | p99 (ms) | max (ms) | server CPU (ms/request) | non-2xx / errors | notes |",
  );
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|---|");
  for (const r of rows) {
    const x = r.result;
    const notes = [`${x.finished}/${x.sent} answered`, `send lag p99 ${ms(x.sendLag.p99)} ms`, r.extra]
      .filter(Boolean)
      .join("; ");
    console.log(
      `| ${r.scenario} | ${r.rate} | ${x.achieved.toFixed(1)} | ${ms(x.latency.p50)} | ${ms(x.latency.p99)} | ${ms(x.latency.max)} | ${r.cpuMs.toFixed(2)} | ${x.non2xx} / ${x.errors + x.timeouts} | ${notes} |`,
    );
  }
  if (autocannonNote) console.log(`\n${autocannonNote}`);
  if (inProcess)
    console.log(
      `\n| in process (median) | wall (CPU) ms | same-run baseline, wall (CPU) |\n|---|---:|---|\n${inProcess}`,
    );
  if (fault) console.log(`\nFault scenario: ${fault}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}

/** Same-run baselines, in process: scoring 1M items, SIMD scorer vs the general GEMM; state update vs rebuild. */
function inProcessBaselines(): string {
  console.error(`building an LRURec over ${items} items (d 64) ...`);
  const model = new LruRec({ numItems: items, hiddenDim: 64, numBlocks: 2, seed: 1 });
  const inc = new LruIncremental(model);
  // Median wall time of n calls, in ms; cpu() gives the last call's median CPU time (user + system).
  let lastCpu = 0;
  const time = (f: () => void, n: number) => {
    const t = timeCalls(f, n);
    lastCpu = t.cpu;
    return t.wall;
  };
  const cpu = () => lastCpu.toFixed(2);
  const state = inc.fromHistory([1, 2, 3]);
  const table = model.embedding.token.weight.data;
  const bias = model.model.bias.data;
  // Exact scoring on one thread (the baseline of the lines below), on two, and the int8-bounded top-k.
  const exact1 = new CatalogueScorer(table, bias, items + 1, 64, { threads: 1, quantized: false });
  const fast = new CatalogueScorer(table, bias, items + 1, 64, { threads: 2 });
  const hs = Array.from({ length: 8 }, (_, u) =>
    inc.fromHistory(Array.from({ length: 20 }, (_, j) => 1 + ((u * 7919 + j * 104729) % items))),
  );
  let which = 0;
  const next = () => hs[which++ % hs.length]!.output;
  const seen = new Set([1, 2, 3]);
  exact1.score(next());
  fast.top(next(), 20, seen);
  const simd = time(() => exact1.score(next()), 15);
  const simdCpu = cpu();
  const simd2 = time(() => fast.score(next()), 15);
  const simd2Cpu = cpu();
  const exactTop = time(() => topItems(exact1.score(next()), 20, seen), 15);
  const exactTopCpu = cpu();
  const shortlists: number[] = [];
  const fastTop = time(() => {
    fast.top(next(), 20, seen);
    shortlists.push(fast.lastTop.shortlist);
  }, 15);
  const fastTopCpu = cpu();
  let agree = 0;
  for (const h of hs) {
    const a = fast.top(h.output, 20, seen);
    const e = topItems(exact1.score(h.output), 20, seen);
    if (JSON.stringify(a) === JSON.stringify(e)) agree++;
  }
  exact1.dispose();
  fast.dispose();
  const gemm = time(() => {
    const sc = matmul(new Tensor(state.output, [1, 64]), model.embedding.token.weight, { transB: true });
    add(sc, model.model.bias);
  }, 5);
  const gemmCpu = cpu();
  const hist = (n: number) => Array.from({ length: n }, (_, i) => 1 + ((i * 7919) % items));
  const long = inc.fromHistory(hist(1000));
  const stepMs = time(() => inc.step(long, 42), 50);
  const stepCpu = cpu();
  const rebuild150 = time(() => inc.fromHistory(hist(150)), 10);
  const r150Cpu = cpu();
  const rebuild1000 = time(() => inc.fromHistory(hist(1000)), 5);
  const r1000Cpu = cpu();
  const n = items.toLocaleString("en-US");
  const lines = [
    `| score ${n} items, SIMD scorer (table kept in wasm memory), 1 thread | ${simd.toFixed(1)} (${simdCpu}) | general GEMM path ${gemm.toFixed(1)} (${gemmCpu}) ms: ${(gemm / simd).toFixed(1)}× |`,
    `| score ${n} items, SIMD scorer, 2 threads | ${simd2.toFixed(1)} (${simd2Cpu}) | 1 thread ${simd.toFixed(1)} (${simdCpu}) ms: ${(simd / simd2).toFixed(1)}× |`,
    `| top 20 of ${n} items: int8 bounds + exact rescoring of a shortlist (median ${median(shortlists)} rows), 2 threads | ${fastTop.toFixed(1)} (${fastTopCpu}) | exact scores + topItems, 1 thread ${exactTop.toFixed(1)} (${exactTopCpu}) ms: ${(exactTop / fastTop).toFixed(1)}×; same top 20 for ${agree}/${hs.length} users |`,
    `| user state: one event (incremental step) | ${stepMs.toFixed(2)} (${stepCpu}) | rebuild from 150 items ${rebuild150.toFixed(2)} (${r150Cpu}) ms: ${(rebuild150 / stepMs).toFixed(0)}×; from 1,000 items ${rebuild1000.toFixed(2)} (${r1000Cpu}) ms: ${(rebuild1000 / stepMs).toFixed(0)}× |`,
  ];
  return lines.join("\n");
}
