/**
 * A run trained through the library records how its dataset was loaded, so resume, eval and serve load the
 * same split again from the run folder alone — without the caller passing the loader options.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join, relative } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  datasetSource,
  generateSynthetic,
  loadDataset,
  syntheticDataset,
  writeSyntheticCsv,
} from "../../src/data/index.js";
import { trainRetriever } from "../../src/retrievers/trainer.js";
import { loadRunDataset } from "../../src/run/index.js";
import { InputError } from "../../src/util/errors.js";

const dir = mkdtempSync(join(tmpdir(), "llamarec-run-dataset-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const training = { maxIterations: 2, valEvery: 2 };

describe("the dataset a run records", () => {
  it("is how loadDataset loaded it: the run folder alone loads the same split", async () => {
    const files = await writeSyntheticCsv(generateSynthetic({ numUsers: 40, numItems: 30, seed: 3 }), dir);
    // Relative paths are recorded absolute: the run folder does not depend on the working directory.
    const spec = { format: "generic" as const, ...files };
    const relativeSpec = { ...spec, items: relative(process.cwd(), files.items) };
    expect(isAbsolute(relativeSpec.items)).toBe(false);
    const { dataset } = await loadDataset(relativeSpec, {
      noCache: true,
      minUserCount: 15,
      strict: undefined,
    });
    expect(datasetSource(dataset)).toEqual({ spec, load: { noCache: true, minUserCount: 15 } });

    const runDir = join(dir, "from-files");
    await trainRetriever({ dataset, model: "pop", runDir, training });
    const again = await loadRunDataset(runDir);
    expect(again.recorded).toEqual({ spec, load: { noCache: true, minUserCount: 15 } });
    // The k-core threshold was recorded: the default (5) gives another split.
    const withDefaults = await loadDataset(spec, { noCache: true });
    expect(withDefaults.dataset.numUsers).not.toBe(dataset.numUsers);
    expect(again.dataset).toEqual(dataset);
  });

  it("is absent for a dataset built in memory, and loading the run says so", async () => {
    const { dataset } = syntheticDataset({ numUsers: 40, numItems: 30, seed: 3 });
    expect(datasetSource(dataset)).toBeUndefined();
    const runDir = join(dir, "in-memory");
    await trainRetriever({ dataset, model: "pop", runDir, training });
    await expect(loadRunDataset(runDir)).rejects.toThrow(InputError);
    await expect(loadRunDataset(runDir)).rejects.toThrow(/records no loader spec/);
  });
});
