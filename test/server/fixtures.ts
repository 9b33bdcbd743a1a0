/**
 * A tiny trained run for the server tests: LRURec (d 16, 2 blocks) trained for a few iterations on
 * synthetic clustered data written as generic CSV, through the real `llamarec train retriever` command.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GROUPS } from "../../src/cli/commands/index.js";
import { trainRetrieverCommand } from "../../src/cli/commands/train-retriever.js";
import { EXIT_OK, runCli } from "../../src/cli/program.js";
import { generateSynthetic, writeSyntheticCsv } from "../../src/data/index.js";

export interface TinyRun {
  dir: string;
  runDir: string;
  cleanup(): void;
}

const sink = { write: () => true } as unknown as NodeJS.WritableStream;

export async function trainTinyRun(prefix = "llamarec-serve-"): Promise<TinyRun> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const files = await writeSyntheticCsv(generateSynthetic({ numUsers: 60, numItems: 80, seed: 5 }), dir);
  const runDir = join(dir, "run");
  let err = "";
  const code = await runCli(
    [
      "train",
      "retriever",
      "--format",
      "generic",
      "--ratings",
      files.interactions,
      "--items",
      files.items,
      "--no-cache",
      "--run",
      runDir,
      "--max-iterations",
      "40",
      "--val-every",
      "20",
      "--batch-size",
      "8",
      "--max-len",
      "20",
      "-q",
    ],
    [trainRetrieverCommand],
    GROUPS,
    {
      stdout: sink,
      stderr: {
        write: (s: string) => {
          err += s;
          return true;
        },
      } as unknown as NodeJS.WritableStream,
    },
  );
  if (code !== EXIT_OK) throw new Error(`training the tiny run failed (${code}): ${err}`);
  return { dir, runDir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
