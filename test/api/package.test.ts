/**
 * The library as a user gets it: `npm pack` of this repository, unpacked into node_modules/llamarec of a
 * separate temporary project (its dependencies linked from this repository's node_modules — what `npm
 * install` of the tarball would put there, without the network), then examples/library.ts and
 * examples/serve.ts are type-checked against the installed package's types and run with plain Node from that
 * folder. Also checks that the README shows those same examples.
 */
import { execFileSync, spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const tmp = mkdtempSync(join(tmpdir(), "llamarec-package-"));
const app = join(tmp, "app");
const EXAMPLES = ["library.ts", "serve.ts"];
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): string {
  const r = spawnSync(cmd, args, {
    cwd,
    encoding: "utf8",
    env: { ...process.env, ...env },
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}\n${r.stdout}\n${r.stderr}`);
  }
  return r.stdout;
}

beforeAll(() => {
  // `npm test` builds first; a bare `vitest run` on a fresh clone builds here.
  if (!existsSync(join(repo, "dist", "index.js"))) run("npm", ["run", "build"], repo);
  const packed = JSON.parse(
    run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", tmp], repo),
  ) as Array<{ filename: string }>;
  const tarball = join(tmp, packed[0]!.filename);
  const installed = join(app, "node_modules", "llamarec");
  mkdirSync(installed, { recursive: true });
  execFileSync("tar", ["-xzf", tarball, "-C", installed, "--strip-components=1"]);
  const manifest = JSON.parse(readFileSync(join(installed, "package.json"), "utf8")) as {
    dependencies?: Record<string, string>;
  };
  for (const dep of Object.keys(manifest.dependencies ?? {})) {
    const target = join(app, "node_modules", dep);
    mkdirSync(dirname(target), { recursive: true });
    symlinkSync(join(repo, "node_modules", dep), target, "dir");
  }
  writeFileSync(
    join(app, "package.json"),
    JSON.stringify({ name: "app", private: true, type: "module", dependencies: { llamarec: "0.1.0" } }),
  );
  writeFileSync(
    join(app, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        target: "ES2022",
        module: "NodeNext",
        moduleResolution: "NodeNext",
        strict: true,
        skipLibCheck: true,
        types: ["node"],
        typeRoots: [join(repo, "node_modules", "@types")],
        outDir: "out",
      },
      files: EXAMPLES,
    }),
  );
  for (const f of EXAMPLES) copyFileSync(join(repo, "examples", f), join(app, f));
}, 300_000);

describe("the installed package", () => {
  it("resolves by its name to the installed copy, and only through its exports map", () => {
    const resolved = run(
      process.execPath,
      ["--input-type=module", "-e", "console.log(import.meta.resolve('llamarec'))"],
      app,
    ).trim();
    expect(resolved).toBe(`file://${join(app, "node_modules", "llamarec", "dist", "index.js")}`);
    const deep = spawnSync(
      process.execPath,
      ["--input-type=module", "-e", "await import('llamarec/dist/cli/main.js')"],
      { cwd: app, encoding: "utf8" },
    );
    expect(deep.status).not.toBe(0);
    expect(deep.stderr).toContain("ERR_PACKAGE_PATH_NOT_EXPORTED");
  });

  it("type-checks examples/library.ts and examples/serve.ts, and runs library.ts, from a separate folder", () => {
    run(process.execPath, [join(repo, "node_modules", "typescript", "bin", "tsc"), "-p", app], app);
    const out = run(process.execPath, [join(app, "out", "library.js")], app, { LLAMAREC_THREADS: "1" });
    expect(out).toMatch(/ml-latest-small: 610 users, 3650 items/);
    expect(out).toMatch(/retriever candidates for user 1:/);
    expect(out).toMatch(/ranked by /);
    expect(out).toMatch(/two-stage NDCG@10 over \d+ test users: \d\.\d{4}/);
  }, 600_000);

  it("runs examples/serve.ts: a run folder served in-process, events stored, recommendations, a 400", () => {
    const out = run(process.execPath, [join(app, "out", "serve.js")], app, { LLAMAREC_THREADS: "1" });
    expect(out).toMatch(/retriever lru \(incremental state\) over 3650 items of ml-latest-small/);
    expect(out).toContain('{"stored":1,"unknown_items":[]}');
    const items = out.split("\n").filter((l) => /^\d+\t/.test(l));
    expect(items).toHaveLength(3);
    expect(items.some((l) => l.startsWith("2571\t"))).toBe(false); // the user's own event is excluded
    expect(out).toContain("400 body/k must be <= 20");
  }, 600_000);
});

describe("README", () => {
  it("shows examples/library.ts and examples/serve.ts verbatim", () => {
    const readme = readFileSync(join(repo, "README.md"), "utf8");
    for (const f of EXAMPLES) {
      const example = readFileSync(join(repo, "examples", f), "utf8");
      expect(readme).toContain(`\`\`\`ts\n${example}\`\`\``);
    }
  });
});
