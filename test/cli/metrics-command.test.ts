import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { EXIT_INPUT, EXIT_OK } from "../../src/cli/program.js";
import { runCaptured } from "./capture.js";

const dir = mkdtempSync(join(tmpdir(), "llamarec-metrics-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const lines = (rows: [number, number, number][]) =>
  `${rows.map(([user, label, rank]) => JSON.stringify({ user, label, rank })).join("\n")}\n`;

describe("llamarec metrics", () => {
  const retriever = join(dir, "retriever.jsonl");
  const ranker = join(dir, "ranker.jsonl");
  writeFileSync(
    retriever,
    lines([
      [1, 10, 3],
      [2, 11, 25],
      [3, 12, 20],
      [4, 13, 1],
    ]),
  );
  writeFileSync(
    ranker,
    lines([
      [1, 10, 1],
      [3, 12, 2],
      [4, 13, 5],
    ]),
  );

  it("recomputes metrics from per-user results", async () => {
    const r = await runCaptured(["metrics", retriever, "--ks", "1,5", "--json"]);
    expect(r.code).toBe(EXIT_OK);
    const { users, metrics } = JSON.parse(r.out);
    expect(users).toBe(4);
    expect(metrics["Recall@1"]).toBe(0.25);
    expect(metrics["Recall@5"]).toBe(0.5);
    expect(metrics["MRR@5"]).toBeCloseTo((1 / 3 + 1) / 4, 12);
  });

  it("prints the two-stage table", async () => {
    const r = await runCaptured(["metrics", retriever, "--ranker", ranker, "--ks", "1,10"]);
    expect(r.code).toBe(EXIT_OK);
    // overall Recall@1: users 1 (ranker rank 1) out of 4
    expect(r.out).toMatch(/\| overall Recall\s+\|\s+4 \| 0\.2500 \| 0\.7500 \|/);
    expect(r.out).toMatch(/\| ranker \(subset\) Recall\s+\|\s+3 \| 0\.3333 \| 1\.0000 \|/);
  });

  it("names the file and line of a bad result row", async () => {
    const bad = join(dir, "bad.jsonl");
    writeFileSync(bad, '{"user":1,"label":2,"rank":1}\n{"user":2,"label":2}\n');
    const r = await runCaptured(["metrics", bad]);
    expect(r.code).toBe(EXIT_INPUT);
    expect(r.err).toContain('bad.jsonl:2: field "rank"');
  });
});
