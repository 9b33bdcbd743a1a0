/**
 * Child process for the resume test: trains "pop" slowly (a 2 ms pause per step) until the parent
 * SIGKILLs it. argv: runDir, then the training JSON.
 */

import { trainRetriever } from "../../src/retrievers/trainer.js";
import { setLogLevel } from "../../src/util/log.js";
import { skewedDataset } from "./fixtures.js";

const [runDir, trainingJson] = process.argv.slice(2);
setLogLevel("error");
const pause = new Int32Array(new SharedArrayBuffer(4));
await trainRetriever({
  dataset: skewedDataset(60, 80, 6, 20),
  model: "pop",
  training: JSON.parse(trainingJson!),
  runDir: runDir!,
  onIteration: () => {
    Atomics.wait(pause, 0, 0, 2);
  },
});
