/**
 * Child process for the baselines' SIGKILL resume test: trains a model slowly (a 2 ms pause per step) until the
 * parent SIGKILLs it. argv: runDir, model, model options JSON, training JSON.
 */

import { syntheticDataset } from "../../src/data/index.js";
import { trainRetriever } from "../../src/retrievers/trainer.js";
import { setLogLevel } from "../../src/util/log.js";

const [runDir, model, optionsJson, trainingJson] = process.argv.slice(2);
setLogLevel("error");
const pause = new Int32Array(new SharedArrayBuffer(4));
await trainRetriever({
  dataset: syntheticDataset({ numUsers: 40, numItems: 30, numClusters: 5, seed: 3 }).dataset,
  model: model!,
  modelOptions: JSON.parse(optionsJson!),
  training: JSON.parse(trainingJson!),
  runDir: runDir!,
  onIteration: () => {
    Atomics.wait(pause, 0, 0, 2);
  },
});
