import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { EXIT_INPUT, EXIT_OK } from "../../src/cli/program.js";
import { runCaptured } from "./capture.js";

const dir = mkdtempSync(join(tmpdir(), "llamarec-data-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = (argv: string[]) => runCaptured(argv);

// 3 users × 3 items, every user rated every item at distinct times; one malformed row (line 11).
function writeFixture(): { inter: string; items: string } {
  const inter = join(dir, "events.csv");
  const rows = ["uid,iid,ts"];
  let t = 0;
  for (const u of ["a", "b", "c"]) for (const i of ["x", "y", "z"]) rows.push(`${u},${i},${++t}`);
  rows.push("d,x,not-a-time");
  writeFileSync(inter, `${rows.join("\n")}\n`);
  const items = join(dir, "items.csv");
  writeFileSync(items, "iid,name\nx,Item X\ny,Item Y\nz,Item Z\n");
  return { inter, items };
}

const genericArgs = (f: { inter: string; items: string }) => [
  "--format",
  "generic",
  "--ratings",
  f.inter,
  "--items",
  f.items,
  "--user-col",
  "uid",
  "--item-col",
  "iid",
  "--time-col",
  "ts",
  "--item-id-col",
  "iid",
  "--title-col",
  "name",
  "--min-uc",
  "2",
  "--min-sc",
  "1",
  "--no-cache",
];

describe("llamarec data stats / prepare", () => {
  it("prints the bundled ml-latest-small statistics", async () => {
    const r = await run(["data", "stats", "--dataset", "ml-latest-small", "--no-cache"]);
    expect(r.code).toBe(EXIT_OK);
    expect(r.out).toMatch(/\| ml-latest-small \|\s+610 \|\s+3,650 \|\s+90,274 \|\s+147\.99 \|\s+4\.05e-2 \|/);
    expect(r.out).toContain("rows read: 100,836, skipped: 0");
  });

  it("reads a generic fixture, counts the skipped row, and exports a reloadable copy", async () => {
    const f = writeFixture();
    const r = await run(["data", "stats", ...genericArgs(f)]);
    expect(r.code).toBe(EXIT_OK);
    expect(r.out).toMatch(/\|\s+3 \|\s+3 \|\s+9 \|/);
    expect(r.out).toContain("skipped: 1");

    const out = join(dir, "export");
    const p = await run(["data", "prepare", ...genericArgs(f), "--out", out]);
    expect(p.code).toBe(EXIT_OK);
    const report = JSON.parse(readFileSync(join(out, "prepare.json"), "utf8"));
    expect(report.stats).toMatchObject({ users: 3, items: 3, interactions: 9 });
    const again = await run([
      "data",
      "stats",
      "--format",
      "generic",
      "--ratings",
      join(out, "interactions.csv"),
      "--items",
      join(out, "items.csv"),
      "--min-uc",
      "2",
      "--min-sc",
      "1",
      "--no-cache",
      "--json",
    ]);
    expect(again.code).toBe(EXIT_OK);
    expect(JSON.parse(again.out).stats).toEqual(report.stats);
  });

  it("stops at a malformed row with --strict, naming file and line, exit 2", async () => {
    const f = writeFixture();
    const r = await run(["data", "stats", ...genericArgs(f), "--strict"]);
    expect(r.code).toBe(EXIT_INPUT);
    expect(r.err).toMatch(/^error: .*events\.csv:11: /);
    expect(r.err).not.toContain("    at ");
  });

  it("explains inconsistent dataset flags", async () => {
    const both = await run(["data", "stats", "--dataset", "ml-latest-small", "--format", "generic"]);
    expect(both).toMatchObject({ code: EXIT_INPUT });
    expect(both.err).toContain("not both");
    const none = await run(["data", "stats"]);
    expect(none.err).toContain("no dataset");
    const missing = await run(["data", "stats", "--format", "generic", "--ratings", "x.csv"]);
    expect(missing.err).toContain("--format generic needs --items (data.items)");
    const unused = await run(["data", "stats", "--format", "movielens", "--dir", dir, "--delimiter", ";"]);
    expect(unused.err).toContain("--delimiter (data.delimiter) is not used by --format movielens");
    const minUc = await run(["data", "stats", "--dataset", "ml-latest-small", "--min-uc", "1"]);
    expect(minUc.err).toBe("error: --min-uc: expected a number >= 2, got 1\n");
    const badFormat = await run(["data", "stats", "--format", "csv"]);
    expect(badFormat.err).toContain(
      '--format: expected one of "movielens", "amazon", "generic", "recbole", got "csv"',
    );
  });

  it("takes the dataset from a config file", async () => {
    const cfg = join(dir, "data.yaml");
    writeFileSync(cfg, "data:\n  dataset: ml-latest-small\n  cache: false\n  minSc: 10\n");
    const r = await run(["data", "stats", "--config", cfg, "--json"]);
    expect(r.code).toBe(EXIT_OK);
    const json = JSON.parse(r.out);
    expect(json.report.preprocess.minItemCount).toBe(10);
    expect(json.stats.items).toBeLessThan(3650);
  });
});

describe("built llamarec binary", () => {
  const main = join(import.meta.dirname, "../../dist/cli/main.js");
  it.skipIf(!existsSync(main))(
    "runs with a shebang and exit codes (skipped unless built: npm run build)",
    () => {
      expect(readFileSync(main, "utf8").startsWith("#!/usr/bin/env node\n")).toBe(true);
      const help = spawnSync(process.execPath, [main, "data", "stats", "--help"], { encoding: "utf8" });
      expect(help.status).toBe(0);
      expect(help.stdout).toContain("--min-uc <n>");
      const bad = spawnSync(
        process.execPath,
        [main, "data", "stats", "--min-sc", "2.5", "--dataset", "ml-latest-small"],
        {
          encoding: "utf8",
        },
      );
      expect(bad.status).toBe(2);
      const cfg = join(dir, "bad.yaml");
      writeFileSync(cfg, "data:\n  minRating: five\n");
      const badCfg = spawnSync(process.execPath, [main, "data", "stats", "--config", cfg], {
        encoding: "utf8",
      });
      expect(badCfg.status).toBe(2);
      expect(badCfg.stderr).toBe('error: bad.yaml: data.minRating: expected number, got "five"\n');
    },
  );
});
