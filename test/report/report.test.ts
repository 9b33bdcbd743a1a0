import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  bestColumns,
  describeRetriever,
  formatRelative,
  loadReference,
  PAPER_ROWS,
  paperTable,
  parseTrainLog,
  type ReportJson,
  readRunData,
  retrieverTable,
  writeReport,
} from "../../src/report/index.js";
import { trainRetriever } from "../../src/retrievers/trainer.js";
import { runPaths } from "../../src/run/index.js";
import { InputError } from "../../src/util/errors.js";
import { runCaptured } from "../cli/capture.js";
import { skewedDataset } from "../retrievers/fixtures.js";
import { paperMetrics, writeFixtureRun } from "./fixture.js";

const tmp = mkdtempSync(join(tmpdir(), "llamarec-report-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The paper's LRURec ML-100k column, with M@5 10% above it. */
const RUN_A = paperMetrics(0.0429, 0.0468, 0.0705, 0.0491, 0.0705, 0.1426);
/** 10% below the paper on M@5, best on every other metric. */
const RUN_B = paperMetrics(0.0351, 0.05, 0.08, 0.052, 0.075, 0.15);

function runA(dir: string): string {
  return writeFixtureRun(dir, {
    test: RUN_A,
    covered: 87,
    stoppedBy: "max-iterations",
    ranker: {
      model: "scratch:tiny",
      mode: "full",
      totalParameters: 2_500_000,
      trainableParameters: 2_500_000,
      retrieverOnSubset: paperMetrics(0.3, 0.33, 0.45, 0.32, 0.38, 0.6),
      rankerOnSubset: paperMetrics(0.1, 0.12, 0.2, 0.13, 0.18, 0.4),
      overall: paperMetrics(0.0143, 0.0171, 0.0285, 0.0185, 0.0256, 0.057),
    },
  });
}

function tableRow(markdown: string, heading: string, label: string): string[] {
  const section = markdown.split(`## ${heading}`)[1]!.split("\n## ")[0]!;
  const line = section.split("\n").find((l) => l.startsWith(`| ${label} `));
  if (!line) throw new Error(`no row ${label} under ${heading}`);
  return line
    .split("|")
    .slice(1, -1)
    .map((c) => c.trim());
}

describe("paper table", () => {
  it("lays out rows M@5…R@10, bolds the best competing value, adds the difference to published numbers", () => {
    const md = paperTable([
      { header: "a", metrics: RUN_A, reference: paperMetrics(0.039, 0.0468, 0.0705, 0.0491, 0.0705, 0.1426) },
      { header: "b", metrics: RUN_B },
      { header: "paper", metrics: paperMetrics(0.09, 0.09, 0.09, 0.09, 0.09, 0.9), comparisonOnly: true },
    ]);
    const lines = md.split("\n");
    expect(lines.map((l) => l.split("|")[1]!.trim())).toEqual([
      "Metric",
      "--------",
      ...PAPER_ROWS.map((r) => r.label),
    ]);
    expect(lines[2]).toMatch(/\| M@5 +\| \*\*0\.0429\*\* \(\+10\.0%\) \| +0\.0351 \| +0\.0900 \|/);
    // b is best on N@5; a is exactly the paper there.
    expect(lines[3]).toMatch(/\| N@5 +\| +0\.0468 \(±0\.0%\) \| +\*\*0\.0500\*\* \| +0\.0900 \|/);
  });

  it("bolds every tied best and nothing when only one column competes", () => {
    const same = paperMetrics(0.1, 0.1, 0.1, 0.1, 0.1, 0.1);
    expect(
      bestColumns([
        { header: "x", metrics: same },
        { header: "y", metrics: same },
      ])[0],
    ).toEqual([0, 1]);
    expect(paperTable([{ header: "x", metrics: same }])).not.toContain("**");
  });

  it("prints a dash for missing or NaN cells", () => {
    const md = paperTable([{ header: "x", metrics: { "MRR@5": Number.NaN } }]);
    expect(md.split("\n")[2]).toMatch(/\| M@5 +\| +– \|/);
  });

  it("formats relative differences with a real minus sign", () => {
    expect(formatRelative(0.1)).toBe("+10.0%");
    expect(formatRelative(-0.0514)).toBe("−5.1%");
    expect(formatRelative(0.00001)).toBe("±0.0%");
  });
});

describe("train log", () => {
  it("reads loss and validation points by iteration or step and ignores a torn last line", () => {
    const text =
      '{"type":"val","iteration":0,"metrics":{"Recall@10":0.01}}\n{"type":"train","iteration":100,"loss":8}\n{"type":"train","step":200,"loss":7}\n{"type":"tr';
    const curve = parseTrainLog(text, "log.jsonl");
    expect(curve.loss).toEqual([
      { x: 100, y: 8 },
      { x: 200, y: 7 },
    ]);
    expect(curve.validation).toEqual([{ x: 0, y: 0.01 }]);
  });

  it("names the line of a broken record", () => {
    expect(() =>
      parseTrainLog('{"type":"train","iteration":1,"loss":1}\nnot json\n{}', "x/train-log.jsonl"),
    ).toThrow("x/train-log.jsonl:2: not valid JSON");
  });
});

describe("bundled reference", () => {
  it("holds the paper's ML-100k Table 1 cells with their source", async () => {
    const ref = await loadReference();
    expect(ref.source).toContain("arXiv:2311.02089");
    const lru = ref.entries.find((e) => e.model === "lru")!;
    expect(lru.metrics).toEqual({
      "MRR@5": 0.039,
      "NDCG@5": 0.0468,
      "Recall@5": 0.0705,
      "MRR@10": 0.0491,
      "NDCG@10": 0.0705,
      "Recall@10": 0.1426,
    });
    expect(ref.entries.map((e) => e.model).sort()).toEqual(["bert4rec", "lru", "narm", "sasrec"]);
  });
});

describe("retrieverTable", () => {
  it("sets four baselines side by side in the paper's Table 1 layout, each against its published column", async () => {
    const models = { lru: RUN_A, sasrec: RUN_B, bert4rec: RUN_B, narm: RUN_A } as const;
    const runs = await Promise.all(
      Object.entries(models).map(([model, test]) =>
        readRunData(writeFixtureRun(join(tmp, "baselines", model), { model, test })),
      ),
    );
    const md = retrieverTable(runs, await loadReference());
    const [header, , m5] = md.split("\n");
    expect(header!.split("|").map((c) => c.trim())).toEqual([
      "",
      "Metric",
      "LRURec",
      "SASRec",
      "BERT4Rec",
      "NARM",
      "LRURec (paper)",
      "NARM (paper)",
      "BERT4Rec (paper)",
      "SASRec (paper)",
      "",
    ]);
    // M@5: 0.0429 vs LRURec .0390; 0.0351 vs SASRec .0333 and BERT4Rec .0188; 0.0429 vs NARM .0298.
    expect(m5).toContain("**0.0429** (+10.0%)");
    expect(m5).toContain("0.0351 (+5.4%)");
    expect(m5).toContain("0.0351 (+86.7%)");
    expect(m5).toContain("**0.0429** (+44.0%)");
  });
});

describe("writeReport", () => {
  it("writes the three tables, the charts and the statements for two runs", async () => {
    const a = runA(join(tmp, "two", "run-a"));
    const b = writeFixtureRun(join(tmp, "two", "run-b"), { test: RUN_B, covered: 122 });
    const out = join(tmp, "two", "out");
    const result = await writeReport([a, b], { outDir: out });
    const md = readFileSync(result.markdown, "utf8");

    const m5 = tableRow(md, "Retriever, all test users (full ranking)", "M@5");
    expect(m5).toEqual([
      "M@5",
      "**0.0429** (+10.0%)",
      "0.0351 (−10.0%)",
      "0.0390",
      "0.0298",
      "0.0188",
      "0.0333",
    ]);
    expect(md).toContain("| Metric | LRURec · run-a");
    // Ranker views: only run-a has a ranker; its retriever order beats the scratch ranker on the subset.
    expect(tableRow(md, "Ranker on the retrieval subset (the paper's Table 3)", "R@10")).toEqual([
      "R@10",
      "**0.6000**",
      "0.4000",
    ]);
    expect(md).toContain("87 of 610 test users (14.3%)");
    const overall = tableRow(md, "Overall two-stage, all test users (the paper's Table 1)", "R@10");
    expect(overall.slice(0, 3)).toEqual(["R@10", "**0.1426** (±0.0%)", "0.0570"]);
    expect(md).toContain("LRURec → scratch:tiny · run-a");
    expect(md).toMatch(/cannot be compared with the paper's[^\n]*not the pretrained Llama 2 7B/);
    expect(md).toContain("Training was cut by its iteration limit");
    expect(md).toContain("arXiv:2311.02089");

    const files = ["retriever-training.svg", "ranker-training.svg", "stages-run-a.svg", "subset-share.svg"];
    for (const f of files) expect(md).toContain(`](${f})`);
    expect(result.charts.map((p) => p.slice(out.length + 1)).sort()).toEqual([...files].sort());
    const svg = (f: string) => readFileSync(join(out, f), "utf8");
    for (const f of files) expect(svg(f)).toMatch(/^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    expect(svg("retriever-training.svg")).toContain("run-a");
    expect(svg("retriever-training.svg")).toContain("run-b");
    expect(svg("retriever-training.svg")).toContain("validation Recall@10");
    // Bar labels: the retriever's R@10 and the two-stage R@10 of run-a.
    expect(svg("stages-run-a.svg")).toContain(">0.143<");
    expect(svg("stages-run-a.svg")).toContain(">0.057<");
    // 87/610 and 122/610 retrieved.
    expect(svg("subset-share.svg")).toContain("14.3% (87)");
    expect(svg("subset-share.svg")).toContain("20.0% (122)");

    const json = JSON.parse(readFileSync(result.json, "utf8")) as ReportJson;
    expect(json.runs.map((r) => r.name)).toEqual(["run-a", "run-b"]);
    expect(json.runs[0]!.ranker!.comparableWithPaper).toBe(false);
    expect(json.tables.retriever!.columns[0]!.relative!["MRR@5"]).toBeCloseTo(0.1, 10);
    expect(json.tables.rankerSubset!.columns[1]!.metrics["Recall@10"]).toBe(0.4);
  });

  it("writes a single run's report into its report/ folder, without published numbers on request", async () => {
    const a = writeFixtureRun(join(tmp, "one", "run-a"), {
      test: RUN_A,
      ranker: {
        model: "/models/llama-2-7b.Q4_K_M.gguf",
        mode: "lora",
        totalParameters: 6_738_415_616,
        trainableParameters: 4_194_304,
        retrieverOnSubset: paperMetrics(0.3, 0.33, 0.45, 0.32, 0.38, 0.6),
        rankerOnSubset: paperMetrics(0.35, 0.4, 0.5, 0.37, 0.45, 0.7),
        overall: paperMetrics(0.05, 0.06, 0.09, 0.055, 0.08, 0.16),
      },
      stages: { retriever: { status: "done", wallSeconds: 600, peakRssMiB: 812.4 } },
    });
    const result = await writeReport([a], { reference: null });
    expect(result.dir).toBe(join(a, "report"));
    const md = readFileSync(join(a, "report", "report.md"), "utf8");
    expect(md).not.toContain("(paper)");
    // One retriever column competes: nothing to bold there.
    expect(md.split("## Retriever, all test users")[1]!.split("\n## ")[0]).not.toContain("**");
    expect(existsSync(join(a, "report", "stages.svg"))).toBe(true);
    expect(md).toContain("| retriever | done | 10.0 min | 812 MiB |");
    // A 7B LoRA ranker: no "cannot be compared" statement.
    expect(md).toContain("match the paper's setting");
    expect(md).not.toContain("cannot be compared");
    expect(md).toContain("LRURec → llama-2-7b.Q4_K_M");
  });

  it("tells the official 500-epoch limit (where the authors' code stops too) from a shorter limit", async () => {
    const statement = async (name: string, maxEpochs?: number) => {
      const dir = writeFixtureRun(join(tmp, "epochs", name), {
        test: RUN_A,
        stoppedBy: "max-epochs",
        maxEpochs,
      });
      const run = await readRunData(dir);
      expect(run.retriever?.maxEpochs).toBe(maxEpochs ?? null);
      return describeRetriever(run.retriever!);
    };
    const official = await statement("official", 500);
    expect(official).toContain("ran to the official 500-epoch limit");
    expect(official).not.toContain("fall short");
    for (const text of [await statement("short", 100), await statement("unrecorded")]) {
      expect(text).toContain("Training was cut by its epoch limit (max-epochs)");
      expect(text).not.toContain("official 500-epoch");
    }
  });

  it("names the file and field of a malformed metrics file", async () => {
    const a = runA(join(tmp, "bad", "run-a"));
    const path = join(a, "ranker", "metrics.json");
    const m = JSON.parse(readFileSync(path, "utf8"));
    m.splits.test.subsetUsers = "many";
    writeFileSync(path, JSON.stringify(m));
    const err = await writeReport([a], { outDir: join(tmp, "bad", "out") }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toContain(`${path}: field "splits.test.subsetUsers"`);
  });
});

describe("llamarec report", () => {
  it("reports several runs into --out, and exits 2 without it", async () => {
    const a = runA(join(tmp, "cli", "run-a"));
    const b = writeFixtureRun(join(tmp, "cli", "run-b"), { test: RUN_B });
    const out = join(tmp, "cli", "out");
    const ok = await runCaptured(["report", a, b, "--out", out, "--quiet"]);
    expect(ok.err).toBe("");
    expect(ok.code).toBe(0);
    expect(ok.out.trim().endsWith("report.md")).toBe(true);
    expect(readFileSync(join(out, "report.md"), "utf8")).toContain("LRURec · run-b");
    const missing = await runCaptured(["report", a, b]);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain("--out");
    const notRun = await runCaptured(["report", join(tmp, "cli", "nothing")]);
    expect(notRun.code).toBe(2);
    expect(notRun.err).toContain("is not a run folder");
  });
});

describe("a real run", () => {
  it("reports what a trained retriever wrote: metrics.json cells, its training curve, its candidates' share", async () => {
    const runDir = join(tmp, "real", "lru-small");
    await trainRetriever({
      dataset: skewedDataset(30, 50, 8, 25, 5),
      model: "lru",
      modelOptions: { hiddenDim: 16, numBlocks: 1 },
      runDir,
      training: { batchSize: 8, maxLen: 12, maxIterations: 20, valEvery: 10, logEvery: 5 },
    });
    const result = await writeReport([runDir], { reference: null });
    const metrics = JSON.parse(readFileSync(runPaths(runDir).retriever.metrics, "utf8"));
    const md = readFileSync(result.markdown, "utf8");
    for (const [label, key] of [
      ["M@5", "MRR@5"],
      ["N@10", "NDCG@10"],
      ["R@10", "Recall@10"],
    ] as const) {
      expect(tableRow(md, "Retriever, all test users (full ranking)", label)[1]).toBe(
        (metrics.test.metrics[key] as number).toFixed(4),
      );
    }
    expect(md).toContain("trained for 20 iterations");
    const json = JSON.parse(readFileSync(result.json, "utf8")) as ReportJson;
    const curve = json.runs[0]!.retriever!.curve!;
    expect(curve.loss.map((p) => p.x)).toEqual([5, 10, 15, 20]);
    expect(curve.validation.map((p) => p.x)).toEqual([0, 10, 20]);
    const share = readFileSync(join(runDir, "report", "subset-share.svg"), "utf8");
    expect(share).toContain(`(${metrics.candidates.test.covered})`);
    expect(json.tables.rankerSubset).toBeNull();
  }, 120_000);
});
