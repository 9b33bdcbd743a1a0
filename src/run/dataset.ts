/** Which dataset split a run was made on: its fingerprint, and loading it again from the run's config. */
import { createHash } from "node:crypto";
import type { Dataset } from "../data/dataset.js";
import { type DatasetSource, datasetSource, loadDataset } from "../data/index.js";
import { InputError } from "../util/errors.js";
import { type DatasetRef, readRunConfig } from "./config.js";
import { runPaths } from "./paths.js";

/**
 * sha256 of the split itself (ids and order of every user's train/val/test), so a run can tell whether a
 * dataset loaded later is the one it was trained on — independent of file names or preprocessing code.
 */
export function datasetFingerprint(dataset: Dataset): string {
  const h = createHash("sha256");
  h.update(`${dataset.numUsers} ${dataset.numItems}\n`);
  for (let u = 1; u <= dataset.numUsers; u++) {
    h.update(`${(dataset.train[u] ?? []).join(",")};${dataset.val[u] ?? 0};${dataset.test[u] ?? 0}\n`);
  }
  return `sha256:${h.digest("hex")}`;
}

/** A run's record of its dataset; `options` (how to load it again) defaults to how `loadDataset` loaded it. */
export function datasetRef(dataset: Dataset, options?: Record<string, unknown>): DatasetRef {
  const recorded = options ?? (datasetSource(dataset) as Record<string, unknown> | undefined);
  return {
    name: dataset.name,
    ...(recorded === undefined ? {} : { options: recorded }),
    fingerprint: datasetFingerprint(dataset),
    numUsers: dataset.numUsers,
    numItems: dataset.numItems,
  };
}

/** Throws when `dataset` is not the split the run was trained on. */
export function checkDatasetMatches(ref: DatasetRef, dataset: Dataset, runDir: string): void {
  const actual = datasetFingerprint(dataset);
  if (actual !== ref.fingerprint) {
    throw new InputError(
      `dataset ${dataset.name} (${actual}) is not the one run ${runDir} was trained on (${ref.name}, ${ref.fingerprint})`,
    );
  }
}

/** Loads the dataset a run recorded in its config.json and checks it is the same split. */
export async function loadRunDataset(runDir: string): Promise<{ dataset: Dataset; recorded: DatasetSource }> {
  const config = await readRunConfig(runDir);
  const recorded = config.dataset.options as unknown as DatasetSource | undefined;
  if (!recorded?.spec) {
    throw new InputError(
      `${runPaths(runDir).config}: the dataset entry records no loader spec; cannot reload it`,
    );
  }
  const { dataset } = await loadDataset(recorded.spec, recorded.load ?? {});
  checkDatasetMatches(config.dataset, dataset, runDir);
  return { dataset, recorded };
}
