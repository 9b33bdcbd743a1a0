/**
 * The baseline grid of issue 9 (SASRec, BERT4Rec, NARM on ml-latest-small, official schedule: validation
 * Recall@10 every 500 iterations, patience 20; dropout 0.1–0.5 picked on validation at the first seed, then
 * that dropout at more seeds — order in bench/grid-plan.ts), resumable, and its table.
 *
 *   npm run bench -- grid run   [--dir /work/grid] [--models sasrec,bert4rec,narm] [--dropouts 0.1,0.2,0.3,0.4,0.5]
 *                               [--seeds 42,7,1234] [--jobs 1] [--dataset ml-latest-small] [--dry-run]
 *                               [--train-args="--max-iterations 60 --val-every 20"]  (extra flags of new runs)
 *                               [--runs narm-d0.4-s42,lru-d0.5-s42,...]  (these runs first, in this order, then
 *                               the rest of the plan: to put long runs first, or add runs outside the grid)
 *   npm run bench -- grid table [--dir /work/grid] [same plan options] [--report-with lru-d0.5-s42]
 *   npm run bench -- grid save  [--dir /work/grid] --to docs/grid
 *
 * `run` trains one run after the other (`--jobs N`: N at a time) with this checkout's built CLI
 * (dist/cli/main.js): `llamarec train retriever --model M --dropout D --seed S --runs-dir <dir> --run
 * M-dD-sS`, or `--resume` when the run folder exists without metrics.json (the trainer's checkpoint at every
 * validation: a killed run continues where it was); a run with retriever/metrics.json is finished and skipped.
 * Each finished run appends one line to <dir>/summary.jsonl (val best, its iteration, val and test metrics).
 * It writes its process group id to <dir>/driver.pid (pause the grid: `kill -STOP -- -$(cat driver.pid)`,
 * continue: `kill -CONT -- -$(cat driver.pid)`), its progress to <dir>/status.json, and each run's console
 * output to <dir>/logs/<run>.log. Killing it is safe at any moment: start it again with the same command.
 *
 * `save` copies every finished run's record (config.json, retriever/{metrics,train-log,candidates}) without
 * its weights and checkpoint to another folder, e.g. into the repository so a lost machine loses no finished
 * run: `table` and `llamarec report` read such a folder as they read the grid's, and copying it back into a
 * grid folder makes the driver skip those runs.
 *
 * `table` prints Markdown: every run (finished, or in progress with its best validation so far), then per
 * model the validation-chosen dropout, the mean ± seed SD of the test metrics at that dropout over its
 * finished seeds, the per-user standard error, the paper's cell (data/reference/llamarec-paper.json) and
 * whether the issue's tolerance (±10% or 2 SE) holds, and the `llamarec report` command of those runs
 * (plus the finished runs named by --report-with, e.g. an LRURec run for the paper's four-model layout).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { userMetric } from "../src/eval/metrics.js";
import { writeFileAtomicSync } from "../src/util/atomic.js";
import {
  chosenDropout,
  type EvaluationPolicy,
  type FinishedRun,
  type GridSpec,
  gridPlan,
  meanSd,
  type PlannedRun,
  perUserStandardError,
  protocolOf,
  withinTolerance,
} from "./grid-plan.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    dir: { type: "string", default: "/work/grid" },
    models: { type: "string", default: "sasrec,bert4rec,narm" },
    dropouts: { type: "string", default: "0.1,0.2,0.3,0.4,0.5" },
    seeds: { type: "string", default: "42,7,1234" },
    jobs: { type: "string", default: "1" },
    dataset: { type: "string", default: "ml-latest-small" },
    // Extra `train retriever` flags of a new run (e.g. "--max-iterations 60 --val-every 20" for a smoke test).
    "train-args": { type: "string", default: "" },
    "dry-run": { type: "boolean", default: false },
    // Finished runs outside the grid (e.g. the LRURec run) added to the table's `llamarec report` command.
    "report-with": { type: "string", default: "" },
    // `save`: the folder the finished runs' records go to.
    to: { type: "string", default: "" },
    // `run`: these runs (model-dD-sS) first, in this order, then the rest of the plan.
    runs: { type: "string", default: "" },
  },
});
const command = positionals[0] ?? "table";
const dir = values.dir;
const spec: GridSpec = {
  models: values.models.split(","),
  dropouts: values.dropouts.split(",").map(Number),
  seeds: values.seeds.split(",").map(Number),
};
const root = dirname(dirname(fileURLToPath(import.meta.url)));
const METRICS = ["MRR@5", "NDCG@5", "Recall@5", "MRR@10", "NDCG@10", "Recall@10"] as const;
const SHORT: Record<string, string> = { MRR: "M", NDCG: "N", Recall: "R" };
const short = (k: string) => k.replace(/^(MRR|NDCG|Recall)/, (m) => SHORT[m]!);

interface RunMetrics {
  selection: {
    bestIteration: number;
    bestValue: number;
    iterations: number;
    stoppedBy: string;
    trainingSeconds: number;
  };
  val: { users: number; metrics: Record<string, number> };
  test: { users: number; metrics: Record<string, number> };
  /** The evaluation policy stated beside the numbers (src/retrievers/run-evaluation.ts). */
  policy?: EvaluationPolicy;
}

const metricsPath = (name: string) => join(dir, name, "retriever", "metrics.json");
const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, "utf8")) as T;
const writeJson = (path: string, value: unknown) =>
  writeFileAtomicSync(path, `${JSON.stringify(value, null, 2)}\n`);

/** Finished runs of the plan's models (retriever/metrics.json present), by run name. */
function finishedRuns(): Map<string, FinishedRun & { metrics: RunMetrics }> {
  const out = new Map<string, FinishedRun & { metrics: RunMetrics }>();
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const m = /^(.+)-d([0-9.]+)-s(\d+)$/.exec(name);
    if (!m || !existsSync(metricsPath(name))) continue;
    const metrics = readJson<RunMetrics>(metricsPath(name));
    out.set(name, {
      name,
      model: m[1]!,
      dropout: Number(m[2]),
      seed: Number(m[3]),
      valBest: metrics.selection.bestValue,
      metrics,
    });
  }
  return out;
}

/** Progress of a started, unfinished run from its training log: last iteration and best validation. */
function progressOf(name: string): { iteration: number; best: number; bestIteration: number } | null {
  const log = join(dir, name, "retriever", "train-log.jsonl");
  if (!existsSync(log)) return null;
  let iteration = 0;
  let best = Number.NEGATIVE_INFINITY;
  let bestIteration = 0;
  for (const line of readFileSync(log, "utf8").split("\n")) {
    if (!line.trim()) continue;
    let e: { type?: string; iteration?: number; metrics?: Record<string, number> };
    try {
      e = JSON.parse(line);
    } catch {
      continue; // a line cut by a kill
    }
    iteration = Math.max(iteration, e.iteration ?? 0);
    const v = e.type === "val" ? e.metrics?.["Recall@10"] : undefined;
    if (v !== undefined && v > best) {
      best = v;
      bestIteration = e.iteration ?? 0;
    }
  }
  return { iteration, best, bestIteration };
}

// ---------------------------------------------------------------------------------------------- table

function fmt(x: number | undefined, digits = 4): string {
  return x === undefined || !Number.isFinite(x) ? "–" : x.toFixed(digits);
}

function paperCells(): Map<string, Record<string, number>> {
  const ref = readJson<{ entries: { model: string; metrics: Record<string, number> }[] }>(
    join(root, "data", "reference", "llamarec-paper.json"),
  );
  return new Map(ref.entries.map((e) => [e.model, e.metrics]));
}

/** Per-user test values of a metric from the run's candidates file (labelRank = the full-ranking rank). */
function perUserTest(name: string, metric: string): number[] {
  const [kind, k] = metric.split("@") as ["MRR" | "NDCG" | "Recall", string];
  const path = join(dir, name, "retriever", "candidates.jsonl");
  const rows: [number, number][] = [];
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (!line.trim()) continue;
    const r = JSON.parse(line) as { split: string; user: number; labelRank: number };
    if (r.split === "test") rows.push([r.user, userMetric(kind, r.labelRank, Number(k))]);
  }
  return rows.sort((a, b) => a[0] - b[0]).map((r) => r[1]);
}

function table(): string {
  const finished = finishedRuns();
  const plan = gridPlan(spec, finished);
  const out: string[] = [];
  const head = `| run | state | iterations | best val R@10 (iteration) | ${METRICS.map(short).join(" | ")} |`;
  out.push(head, `|---|---|--:|---|${METRICS.map(() => "--:").join("|")}|`);
  const seen = new Set<string>();
  for (const p of plan) {
    if (seen.has(p.name)) continue;
    seen.add(p.name);
    const f = finished.get(p.name);
    if (f) {
      const s = f.metrics.selection;
      out.push(
        `| ${p.name} | done (${s.stoppedBy}, ${(s.trainingSeconds / 3600).toFixed(1)} h) | ${s.iterations} | ` +
          `${fmt(s.bestValue)} (${s.bestIteration}) | ${METRICS.map((k) => fmt(f.metrics.test.metrics[k])).join(" | ")} |`,
      );
      continue;
    }
    const pr = existsSync(join(dir, p.name)) ? progressOf(p.name) : null;
    if (pr)
      out.push(
        `| ${p.name} | in progress | ${pr.iteration} | ${fmt(pr.best)} (${pr.bestIteration}) so far | ${METRICS.map(() => "–").join(" | ")} |`,
      );
    else if (p.ready) out.push(`| ${p.name} | pending | | | ${METRICS.map(() => "").join(" | ")} |`);
  }
  const paper = paperCells();
  out.push("");
  out.push(
    `| model | chosen dropout (val R@10 at seed ${spec.seeds[0]}) | seeds | | ${METRICS.map(short).join(" | ")} |`,
    `|---|---|---|---|${METRICS.map(() => "--:").join("|")}|`,
  );
  const reportRuns: string[] = [];
  for (const model of spec.models) {
    const byDropout = spec.dropouts
      .map((d) => {
        const f = finished.get(`${model}-d${d}-s${spec.seeds[0]}`);
        return `${d}: ${f ? fmt(f.valBest) : "–"}`;
      })
      .join(", ");
    const chosen = chosenDropout(spec, model, finished);
    // Until the first seed's dropouts are all done, the best finished one is shown (provisional).
    let dropout = chosen;
    if (dropout === null) {
      let best = Number.NEGATIVE_INFINITY;
      for (const d of spec.dropouts) {
        const f = finished.get(`${model}-d${d}-s${spec.seeds[0]}`);
        if (f && f.valBest > best) {
          best = f.valBest;
          dropout = d;
        }
      }
    }
    const runs = dropout === null ? [] : spec.seeds.map((s) => finished.get(`${model}-d${dropout}-s${s}`));
    const done = runs.filter((r) => r !== undefined);
    const label = dropout === null ? "–" : `${dropout}${chosen === null ? " (provisional)" : ""}`;
    const ref = paper.get(model);
    if (done.length === 0) {
      out.push(
        `| ${model} | ${label} (${byDropout}) | none | ours | ${METRICS.map(() => "–").join(" | ")} |`,
      );
    } else {
      reportRuns.push(...done.map((r) => r.name));
      const stats = METRICS.map((k) => {
        const ms = meanSd(done.map((r) => r.metrics.test.metrics[k]!));
        let se = Number.NaN;
        try {
          se = perUserStandardError(done.map((r) => perUserTest(r.name, k)));
        } catch {
          // no candidates file: no standard error
        }
        return { k, ...ms, se };
      });
      out.push(
        `| ${model} | ${label} (${byDropout}) | ${done.map((r) => r.seed).join(", ")} | mean ± seed SD | ${stats
          .map((s) => `${fmt(s.mean)} ± ${fmt(s.sd)}`)
          .join(" | ")} |`,
        `| | | | per-user SE | ${stats.map((s) => fmt(s.se)).join(" | ")} |`,
      );
      if (ref)
        out.push(
          `| | | | paper | ${METRICS.map((k) => fmt(ref[k])).join(" | ")} |`,
          `| | | | vs paper (✓ within ±10% or 2 SE) | ${stats
            .map((s) => {
              const p = ref[s.k]!;
              const rel = ((s.mean - p) / p) * 100;
              return `${rel >= 0 ? "+" : ""}${rel.toFixed(0)}% ${withinTolerance(s.mean, p, s.se) ? "✓" : "✗"}`;
            })
            .join(" | ")} |`,
        );
    }
  }
  const protocols = [...new Set([...finished.values()].map((f) => protocolOf(f.metrics.policy)))];
  if (protocols.length > 0)
    out.push(
      "",
      protocols.length === 1
        ? `evaluation of every finished run: ${protocols[0]}`
        : `MIXED evaluation protocols in ${dir}: ${protocols.join("; ")} — these numbers do not compare`,
    );
  reportRuns.push(...values["report-with"].split(",").filter((r) => r !== ""));
  if (reportRuns.length > 0)
    out.push(
      "",
      `report of these runs: llamarec report ${reportRuns.join(" ")} --runs-dir ${dir} --out ${join(dir, "report")}`,
    );
  return out.join("\n");
}

/** The runs of `first`, then those of `plan` not among them. */
function withFirst(first: PlannedRun[], plan: PlannedRun[]): PlannedRun[] {
  const names = new Set(first.map((p) => p.name));
  return [...first, ...plan.filter((p) => !names.has(p.name))];
}

// ---------------------------------------------------------------------------------------------- save

/** The files of a finished run that `table` and `llamarec report` read (no weights, no checkpoint). */
const RECORD = [
  "config.json",
  "retriever/metrics.json",
  "retriever/train-log.jsonl",
  "retriever/candidates.jsonl",
];

function save(to: string): void {
  if (!to) {
    console.error("grid save: --to <folder> is required");
    process.exit(2);
  }
  let n = 0;
  for (const name of readdirSync(dir).sort()) {
    if (!/^(.+)-d([0-9.]+)-s(\d+)$/.test(name) || !existsSync(metricsPath(name))) continue;
    for (const file of RECORD) {
      const from = join(dir, name, file);
      if (!existsSync(from)) continue;
      mkdirSync(dirname(join(to, name, file)), { recursive: true });
      writeFileAtomicSync(join(to, name, file), readFileSync(from));
    }
    n++;
  }
  console.log(`grid save: ${n} finished runs of ${dir} recorded in ${to}`);
}

// ---------------------------------------------------------------------------------------------- driver

/** `--runs a,b,…`: each a run name model-dD-sS, all ready, in the given order. */
function explicitRuns(list: string): PlannedRun[] {
  if (!list) return [];
  return list.split(",").map((name) => {
    const m = /^(.+)-d([0-9.]+)-s(\d+)$/.exec(name.trim());
    if (!m) {
      console.error(`grid: --runs: "${name}" is not a run name model-dD-sS (e.g. narm-d0.4-s42)`);
      process.exit(2);
    }
    return { name: name.trim(), model: m[1]!, dropout: Number(m[2]), seed: Number(m[3]), ready: true };
  });
}

function processGroup(): number {
  // /proc/self/stat: pid (comm) state ppid pgrp … — comm may hold spaces, so read after the last ')'.
  const stat = readFileSync("/proc/self/stat", "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
}

function alive(pid: number, mustContain: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(mustContain);
  } catch {
    return false;
  }
}

function commitOf(): string {
  try {
    return execFileSync("git", ["-C", root, "rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
}

async function drive(): Promise<void> {
  const cli = join(root, "dist", "cli", "main.js");
  if (!existsSync(cli)) throw new Error(`${cli} not found: run npm run build in ${root} first`);
  mkdirSync(join(dir, "logs"), { recursive: true });
  const pidFile = join(dir, "driver.pid");
  const driverJson = join(dir, "driver.json");
  if (existsSync(driverJson)) {
    const other = readJson<{ pid: number }>(driverJson).pid;
    if (other !== process.pid && alive(other, "grid")) {
      console.error(`grid: a driver (pid ${other}) is already running on ${dir}`);
      process.exit(2);
    }
  }
  const pgid = processGroup();
  const commit = commitOf();
  writeJson(driverJson, {
    pid: process.pid,
    pgid,
    root,
    commit,
    startedAt: new Date().toISOString(),
    argv: process.argv.slice(2),
  });
  writeFileAtomicSync(pidFile, `${pgid}\n`); // a bare number: kill -STOP -- -$(cat driver.pid)
  const jobs = Math.max(1, Number(values.jobs));
  const summaryPath = join(dir, "summary.jsonl");
  const summarised = new Set<string>();
  if (existsSync(summaryPath))
    for (const line of readFileSync(summaryPath, "utf8").split("\n"))
      if (line.trim()) summarised.add((JSON.parse(line) as { run: string }).run);

  const running = new Map<
    string,
    { child: ChildProcess | null; pid: number; startedAt: string; resumed: boolean }
  >();
  // Runs left running by a killed driver (their pid recorded in status.json): wait for them, never start twice.
  const statusPath = join(dir, "status.json");
  if (existsSync(statusPath)) {
    const old = readJson<{ running?: { run: string; pid: number; startedAt: string }[] }>(statusPath);
    for (const r of old.running ?? [])
      if (alive(r.pid, r.run))
        running.set(r.run, { child: null, pid: r.pid, startedAt: r.startedAt, resumed: false });
  }
  const failures = new Map<string, number>();
  const log = (msg: string) => console.log(`${new Date().toISOString()} ${msg}`);

  const writeStatus = (plan: PlannedRun[], finished: ReadonlyMap<string, FinishedRun>) =>
    writeJson(statusPath, {
      updatedAt: new Date().toISOString(),
      driver: { pid: process.pid, pgid, commit, root },
      spec,
      running: [...running].map(([run, r]) => ({
        run,
        pid: r.pid,
        startedAt: r.startedAt,
        resumed: r.resumed,
      })),
      finished: [...finished.keys()].sort(),
      pending: plan
        .filter((p) => !finished.has(p.name) && !running.has(p.name))
        .map((p) => (p.ready ? p.name : `${p.name} (dropout not chosen yet)`)),
      failures: Object.fromEntries(failures),
    });

  const summarise = (finished: Map<string, FinishedRun & { metrics: RunMetrics }>) => {
    for (const [name, f] of finished) {
      if (summarised.has(name) || !spec.models.includes(f.model)) continue;
      const s = f.metrics.selection;
      appendFileSync(
        summaryPath,
        `${JSON.stringify({
          run: name,
          model: f.model,
          dropout: f.dropout,
          seed: f.seed,
          finishedAt: new Date().toISOString(),
          commit,
          stoppedBy: s.stoppedBy,
          iterations: s.iterations,
          bestIteration: s.bestIteration,
          valBest: s.bestValue,
          trainingSeconds: s.trainingSeconds,
          val: f.metrics.val.metrics,
          test: f.metrics.test.metrics,
        })}\n`,
      );
      summarised.add(name);
      log(
        `finished ${name}: val R@10 ${fmt(s.bestValue)} at ${s.bestIteration}, test R@10 ${fmt(f.metrics.test.metrics["Recall@10"])}`,
      );
    }
  };

  let stopping = false;
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const)
    process.on(sig, () => {
      stopping = true;
      log(`${sig}: stopping the runs (each continues from its last checkpoint on the next start)`);
      for (const r of running.values()) r.child?.kill("SIGTERM");
      setTimeout(() => process.exit(143), 2000);
    });

  let wake: (() => void) | null = null;
  for (;;) {
    const finished = finishedRuns();
    summarise(finished);
    // Orphans of an earlier driver: drop them once gone.
    for (const [name, r] of running) if (!r.child && !alive(r.pid, name)) running.delete(name);
    const plan = withFirst(explicitRuns(values.runs), gridPlan(spec, finished));
    const todo = plan.filter(
      (p) => p.ready && !finished.has(p.name) && !running.has(p.name) && (failures.get(p.name) ?? 0) < 2,
    );
    writeStatus(plan, finished);
    if (stopping) return;
    if (todo.length === 0 && running.size === 0) {
      const waiting = plan.filter((p) => !finished.has(p.name)).length;
      log(
        waiting === 0 ? "grid complete" : `nothing runnable (${waiting} runs failed twice or wait for them)`,
      );
      return;
    }
    while (running.size < jobs && todo.length > 0) {
      const p = todo.shift()!;
      const resumed = existsSync(join(dir, p.name, "config.json"));
      const args = resumed
        ? // --model too: the CLI otherwise checks the stored model against its default (lru)
          ["train", "retriever", "--resume", "--model", p.model, "--runs-dir", dir, "--run", p.name]
        : [
            "train",
            "retriever",
            "--dataset",
            values.dataset,
            "--model",
            p.model,
            "--dropout",
            String(p.dropout),
            "--seed",
            String(p.seed),
            "--runs-dir",
            dir,
            "--run",
            p.name,
            ...values["train-args"].split(" ").filter((a) => a !== ""),
          ];
      log(`${resumed ? "resuming" : "starting"} ${p.name}: node ${cli} ${args.join(" ")}`);
      if (values["dry-run"]) {
        failures.set(p.name, 2);
        continue;
      }
      const out = openSync(join(dir, "logs", `${p.name}.log`), "a");
      const child = spawn(process.execPath, [cli, ...args], {
        stdio: ["ignore", out, out],
        env: process.env,
        cwd: dir, // the dataset cache (.cache/llamarec) goes under the grid folder
      });
      running.set(p.name, { child, pid: child.pid!, startedAt: new Date().toISOString(), resumed });
      child.on("exit", (code, signal) => {
        running.delete(p.name);
        if (!existsSync(metricsPath(p.name))) {
          failures.set(p.name, (failures.get(p.name) ?? 0) + 1);
          log(`${p.name} exited (${signal ?? code}) without metrics.json; see logs/${p.name}.log`);
        }
        wake?.();
      });
    }
    writeStatus(plan, finished);
    // Wait for a run to end (or poll orphans of an earlier driver every 30 s).
    await new Promise<void>((resolve) => {
      wake = resolve;
      setTimeout(resolve, 30_000);
    });
    wake = null;
  }
}

if (command === "table") console.log(table());
else if (command === "run") await drive();
else if (command === "save") save(values.to);
else {
  console.error(
    "usage: npm run bench -- grid run|table|save [--dir /work/grid] [--models ...] [--dropouts ...] [--seeds ...] [--jobs 1]",
  );
  process.exit(2);
}
