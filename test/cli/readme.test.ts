/**
 * The README's "Command line" examples run as written (issue 7 §2): every `llamarec …` line of its sh
 * blocks, in order, in a fresh working folder. Files a user brings (ml-1m/, events.tsv, items.tsv,
 * experiment.yaml) are small fixtures with those names; experiment.yaml is the README's own YAML block;
 * the bundled data and models/ come from the repo. The shown error transcript is checked too.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT_INPUT, EXIT_OK } from "../../src/cli/program.js";
import { runCaptured } from "./capture.js";

const repo = resolve(import.meta.dirname, "..", "..");
const readme = readFileSync(join(repo, "README.md"), "utf8");
const section = readme.slice(
  readme.indexOf("## Command line"),
  readme.indexOf("\n## ", readme.indexOf("## Command line") + 5),
);

function blocks(lang: string): string[] {
  return [...section.matchAll(new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``, "g"))].map((m) => m[1]!);
}

/** `llamarec …` commands of the sh blocks: continuation lines joined, comments dropped. */
function commands(): string[][] {
  const out: string[][] = [];
  for (const block of blocks("sh")) {
    const joined = block.replace(/\\\n\s*/g, " ");
    for (const line of joined.split("\n")) {
      const cmd = line.replace(/\s+#.*$/, "").trim();
      if (cmd.startsWith("llamarec ")) out.push(cmd.split(/\s+/).slice(1));
    }
  }
  return out;
}

const dir = mkdtempSync(join(tmpdir(), "llamarec-readme-"));
const cwd = process.cwd();
afterAll(() => {
  process.chdir(cwd);
  rmSync(dir, { recursive: true, force: true });
});

beforeAll(() => {
  process.chdir(dir);
  symlinkSync(join(repo, "models"), join(dir, "models"));
  // MovieLens 1M layout (user::item::rating::time, item::Title (year)::genres) and a generic TSV pair.
  mkdirSync("ml-1m");
  const ratings: string[] = [];
  const events = ["uid\tiid\tts"];
  for (let u = 1; u <= 12; u++)
    for (let k = 0; k < 8; k++) {
      const item = ((u * 3 + k * 5) % 15) + 1;
      ratings.push(`${u}::${item}::${1 + ((u + k) % 5)}::${1000 + u * 100 + k}`);
      events.push(`u${u}\ti${item}\t${1000 + u * 100 + k}`);
    }
  writeFileSync("ml-1m/ratings.dat", `${ratings.join("\n")}\n`);
  writeFileSync(
    "ml-1m/movies.dat",
    `${Array.from({ length: 15 }, (_, i) => `${i + 1}::Movie ${i + 1} (19${70 + i})::Drama`).join("\n")}\n`,
  );
  writeFileSync("events.tsv", `${events.join("\n")}\n`);
  writeFileSync(
    "items.tsv",
    `iid\tname\n${Array.from({ length: 15 }, (_, i) => `i${i + 1}\tItem ${i + 1}`).join("\n")}\n`,
  );
  const yaml = blocks("yaml")[0];
  if (!yaml) throw new Error("README: no yaml block in the Command line section");
  writeFileSync("experiment.yaml", yaml);
});

describe("README: Command line", () => {
  const all = commands();

  it("has the examples this test expects (data, run folder, metrics on run files)", () => {
    expect(all.length).toBeGreaterThanOrEqual(12);
    expect(all.some((c) => c[0] === "metrics" && c.includes("--ranker"))).toBe(true);
  });

  for (const [i, argv] of all.entries()) {
    it(`llamarec ${argv.join(" ")}`, async () => {
      const r = await runCaptured(argv);
      if (r.code !== EXIT_OK)
        throw new Error(`command ${i + 1} failed (exit ${r.code}):\n${r.err.slice(-2000)}`);
      expect(r.out.length).toBeGreaterThan(0);
    }, 900_000);
  }

  it("shows the config error it documents", async () => {
    const transcript = /```\n\$ llamarec (.*)\n(error: .*)\n```/.exec(section);
    expect(transcript).not.toBeNull();
    const [, command, error] = transcript!;
    const file = command!.split(/\s+/).at(-1)!;
    writeFileSync(file, `${blocks("yaml")[0]!.replace("data:\n", "data:\n  minRating: five\n")}`);
    const r = await runCaptured(command!.split(/\s+/));
    expect(r.code).toBe(EXIT_INPUT);
    expect(r.err.trim()).toBe(error);
  });
});
