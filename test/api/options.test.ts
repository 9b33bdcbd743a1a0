/**
 * Library option objects are checked like config files: a misspelt option fails with its name (a JavaScript
 * caller has no type checker; `maxIteration` silently ignored would train the full schedule for hours).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { syntheticDataset } from "../../src/data/index.js";
import { trainRankerRun } from "../../src/ranker/training/ranker-run.js";
import { trainRetriever } from "../../src/retrievers/trainer.js";
import { InputError } from "../../src/util/errors.js";

const dir = mkdtempSync(join(tmpdir(), "llamarec-options-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const { dataset } = syntheticDataset({ numUsers: 40, numItems: 30, seed: 3 });

describe("library options", () => {
  it("trainRetriever rejects an unknown training option by name, and trains with the right one", async () => {
    const typo = { maxIteration: 2 } as unknown as { maxIterations: number };
    const bad = trainRetriever({ dataset, model: "pop", runDir: join(dir, "typo"), training: typo });
    await expect(bad).rejects.toThrow(InputError);
    await expect(
      trainRetriever({ dataset, model: "pop", runDir: join(dir, "typo2"), training: typo }),
    ).rejects.toThrow(/retriever training: unknown option "maxIteration" \(known: .*maxIterations/);
    const ok = await trainRetriever({
      dataset,
      model: "pop",
      runDir: join(dir, "ok"),
      training: { maxIterations: 2, valEvery: 2 },
    });
    expect(ok.evaluation).toBeDefined();
  });

  it("trainRankerRun rejects unknown training and prompt options by name", async () => {
    const runDir = join(dir, "ok");
    const steps = { steps: 5 } as unknown as { maxSteps: number };
    await expect(trainRankerRun({ runDir, dataset, model: "scratch:tiny", training: steps })).rejects.toThrow(
      /ranker training: unknown option "steps" \(known: .*maxSteps/,
    );
    const prompt = { numCandidate: 10 } as unknown as { numCandidates: number };
    await expect(trainRankerRun({ runDir, dataset, model: "scratch:tiny", prompt })).rejects.toThrow(
      /ranker prompt: unknown option "numCandidate" \(known: numCandidates/,
    );
  });
});
