/**
 * The pipeline's evaluate stage: the run's headline numbers on the test split in one file
 * (evaluation.json): the retriever over all test users (full ranking), the retriever and the ranker on the
 * retrieval subset (users whose label is in the top-k candidates; the paper's Table 3), and the two stages
 * together over all users (the paper's Table 1).
 */
import type { Metrics } from "../eval/index.js";
import { readJsonFile, runPaths } from "../run/index.js";
import { InputError } from "../util/errors.js";

export interface Evaluation {
  split: "test";
  users: number;
  subsetUsers: number;
  numCandidates: number;
  retriever: Metrics;
  retrieverOnSubset: Metrics;
  rankerOnSubset: Metrics;
  overall: Metrics;
}

export async function evaluateRun(runDir: string): Promise<Evaluation> {
  const p = runPaths(runDir);
  const retriever = (await readJsonFile(p.retriever.metrics, "retriever metrics")) as {
    test?: { users: number; metrics: Metrics };
  };
  const ranker = (await readJsonFile(p.ranker.metrics, "ranker metrics")) as {
    splits?: {
      test?: {
        users: number;
        subsetUsers: number;
        numCandidates: number;
        retrieverOnSubset: Metrics;
        rankerOnSubset: Metrics;
        overall: Metrics;
      };
    };
  };
  const t = ranker.splits?.test;
  if (!retriever.test) throw new InputError(`${p.retriever.metrics}: field "test" is missing`);
  if (!t) throw new InputError(`${p.ranker.metrics}: field "splits.test" is missing`);
  return {
    split: "test",
    users: retriever.test.users,
    subsetUsers: t.subsetUsers,
    numCandidates: t.numCandidates,
    retriever: retriever.test.metrics,
    retrieverOnSubset: t.retrieverOnSubset,
    rankerOnSubset: t.rankerOnSubset,
    overall: t.overall,
  };
}
