import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { metricsFromRanks } from "../../src/eval/metrics.js";
import { parseUserRanks, readUserRanks, writeUserRanks } from "../../src/eval/user-ranks.js";
import { RowError } from "../../src/util/errors.js";

const dir = mkdtempSync(join(tmpdir(), "llamarec-ranks-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("per-user results (JSON lines)", () => {
  it("round-trips and recomputes the same metrics", async () => {
    const results = [
      { user: 1, label: 5, rank: 1 },
      { user: 2, label: 7, rank: 2.5, ties: 3 },
      { user: 3, label: 9, rank: 431 },
    ];
    const path = join(dir, "sub", "test.ranks.jsonl");
    await writeUserRanks(path, results);
    expect(readFileSync(path, "utf8").split("\n")[0]).toBe('{"user":1,"label":5,"rank":1}');
    const back = await readUserRanks(path);
    expect(back).toEqual(results);
    expect(metricsFromRanks(back)).toEqual(metricsFromRanks(results));
    expect(metricsFromRanks(back)).not.toEqual(metricsFromRanks(back.map((r) => r.rank)));
  });

  it("names file and line of a bad row", () => {
    const text = '{"user":1,"label":2,"rank":1}\n{"user":2,"label":3,"rank":"x"}\n';
    expect(() => parseUserRanks(text, "r.jsonl")).toThrow('r.jsonl:2: field "rank"');
    expect(() => parseUserRanks("{oops\n", "r.jsonl")).toThrow(RowError);
    expect(() => parseUserRanks('{"user":1,"label":2,"rank":1,"ties":-1}', "r.jsonl")).toThrow(/"ties"/);
    expect(() => parseUserRanks('{"user":0,"label":2,"rank":1}', "r.jsonl")).toThrow(/"user"/);
    expect(() => parseUserRanks('{"user":1,"label":2,"rank":1}\n{"user":1,"label":2,"rank":1}', "r")).toThrow(
      /r:2: user 1 appears twice/,
    );
  });

  it("reports a missing file as input error", async () => {
    const missing = join(dir, "nope.jsonl");
    writeFileSync(join(dir, "empty.jsonl"), "");
    expect(await readUserRanks(join(dir, "empty.jsonl"))).toEqual([]);
    await expect(readUserRanks(missing)).rejects.toThrow(/cannot read per-user results/);
  });
});
