import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseIntArg } from "../../src/cli/options.js";
import { EXIT_INPUT, EXIT_OK, EXIT_UNEXPECTED } from "../../src/cli/program.js";
import type { CommandSpec } from "../../src/cli/registry.js";
import { dataSection, evalSection } from "../../src/config/core.js";
import { InputError } from "../../src/util/errors.js";
import { log } from "../../src/util/log.js";
import { runCaptured } from "./capture.js";

const dir = mkdtempSync(join(tmpdir(), "llamarec-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// A command that echoes the resolved config, to test flag/config merging without real work.
const echo: CommandSpec = {
  path: ["test", "echo"],
  summary: "print the resolved config",
  configure(cmd) {
    cmd
      .option("--min-uc <n>", "min user count", parseIntArg)
      .option("--tie <mode>", "tie mode")
      .option("--no-cache");
  },
  configFlags: { minUc: "data.minUc", tie: "eval.tie", cache: "data.cache" },
  async run(ctx) {
    log.info("working");
    log.debug("details");
    ctx.out.write(
      `${JSON.stringify({ data: dataSection.get(ctx.config), eval: evalSection.get(ctx.config) })}\n`,
    );
  },
};
const failing = (err: Error): CommandSpec => ({
  path: ["test", "fail"],
  summary: "throws",
  run: async () => {
    throw err;
  },
});

const run = (argv: string[], extra: CommandSpec[] = []) => runCaptured(argv, [echo, ...extra]);

describe("llamarec CLI framework", () => {
  it("merges config file and flags, flags winning", async () => {
    const cfg = join(dir, "c.yaml");
    writeFileSync(cfg, "data:\n  minUc: 3\n  minSc: 7\neval:\n  tie: expected\n");
    const r = await run(["test", "echo", "--config", cfg, "--min-uc", "9"]);
    expect(r.code).toBe(EXIT_OK);
    const printed = JSON.parse(r.out);
    expect(printed.data).toEqual({ minUc: 9, minSc: 7 });
    expect(printed.eval.tie).toBe("expected");
    expect(printed.eval.ks).toEqual([1, 5, 10, 20, 50]);
    expect(r.err).toBe("working\n");
  });

  it("applies only flags given on the command line (commander defaults do not override)", async () => {
    const cfg = join(dir, "cache.json");
    writeFileSync(cfg, JSON.stringify({ data: { cache: false } }));
    expect(JSON.parse((await run(["test", "echo", "-c", cfg])).out).data.cache).toBe(false);
    expect(JSON.parse((await run(["test", "echo", "--no-cache"])).out).data.cache).toBe(false);
  });

  it("names file and field of a bad config value, exit 2, no stack", async () => {
    const cfg = join(dir, "config.yaml");
    writeFileSync(cfg, "data:\n  minRating: five\n");
    const r = await run(["test", "echo", "--config", cfg]);
    expect(r.code).toBe(EXIT_INPUT);
    expect(r.err).toBe('error: config.yaml: data.minRating: expected number, got "five"\n');
  });

  it("rejects unknown fields and sections", async () => {
    const cfg = join(dir, "typo.yaml");
    writeFileSync(cfg, "data:\n  minRatng: 4\nevaluation: {}\n");
    const r = await run(["test", "echo", "--config", cfg]);
    expect(r.code).toBe(EXIT_INPUT);
    expect(r.err).toContain("typo.yaml: data.minRatng: unknown field (known: dataset,");
    expect(r.err).toContain("typo.yaml: evaluation: unknown section");
  });

  it("names the flag when a flag value is invalid", async () => {
    const bad = await run(["test", "echo", "--tie", "optimistic"]);
    expect(bad.code).toBe(EXIT_INPUT);
    expect(bad.err).toBe('error: --tie: expected one of "pessimistic", "expected", got "optimistic"\n');
    const notNumber = await run(["test", "echo", "--min-uc", "five"]);
    expect(notNumber.code).toBe(EXIT_INPUT);
    expect(notNumber.err).toContain('expected a number, got "five"');
  });

  it("reports missing and malformed config files cleanly", async () => {
    const missing = await run(["test", "echo", "--config", join(dir, "nope.yaml")]);
    expect(missing.code).toBe(EXIT_INPUT);
    expect(missing.err).toMatch(/^error: cannot read config file .*nope.yaml: ENOENT\n$/);
    const cfg = join(dir, "broken.json");
    writeFileSync(cfg, "{ not json");
    const broken = await run(["test", "echo", "--config", cfg]);
    expect(broken.code).toBe(EXIT_INPUT);
    expect(broken.err).toMatch(/broken.json: not valid JSON/);
  });

  it("maps errors to exit codes: InputError 2 without stack, unexpected 1 with stack", async () => {
    const input = await run(["test", "fail"], [failing(new InputError("ratings.csv:3: bad user"))]);
    expect(input).toMatchObject({ code: EXIT_INPUT, err: "error: ratings.csv:3: bad user\n" });
    const bug = await run(["test", "fail"], [failing(new TypeError("boom"))]);
    expect(bug.code).toBe(EXIT_UNEXPECTED);
    expect(bug.err).toContain("TypeError: boom");
    expect(bug.err).toContain("    at ");
  });

  it("treats usage errors as input errors and --help as success", async () => {
    expect((await run(["test", "echo", "--bogus"])).code).toBe(EXIT_INPUT);
    expect((await run(["nonsense"])).code).toBe(EXIT_INPUT);
    const help = await run(["--help"]);
    expect(help.code).toBe(EXIT_OK);
    for (const name of ["data", "train", "eval", "rank", "model", "serve", "run"])
      expect(help.out).toContain(name);
    const group = await run(["data"]);
    expect(group.code).toBe(EXIT_INPUT);
    expect(group.err).toContain("stats");
    expect((await run(["--version"])).code).toBe(EXIT_OK);
    const sub = await run(["test", "echo", "--help"]);
    expect(sub.code).toBe(EXIT_OK);
    expect(sub.out).toContain("--min-uc <n>");
  });

  it("honours --quiet and --verbose", async () => {
    expect((await run(["test", "echo", "--quiet"])).err).toBe("");
    expect((await run(["test", "echo", "--verbose"])).err).toBe("working\ndebug: details\n");
  });
});
