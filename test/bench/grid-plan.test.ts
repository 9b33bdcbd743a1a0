import { describe, expect, it } from "vitest";
import {
  chosenDropout,
  type FinishedRun,
  type GridSpec,
  gridPlan,
  meanSd,
  perUserStandardError,
  protocolOf,
  runName,
  withinTolerance,
} from "../../bench/grid-plan.js";
import { evaluationPolicy } from "../../src/retrievers/run-evaluation.js";
import { officialDefaults } from "../../src/retrievers/train-config.js";

const spec: GridSpec = { models: ["sasrec", "narm"], dropouts: [0.1, 0.2, 0.3], seeds: [42, 7, 1] };

function done(model: string, dropout: number, seed: number, valBest: number): [string, FinishedRun] {
  const name = runName(model, dropout, seed);
  return [name, { name, model, dropout, seed, valBest }];
}

describe("baseline grid plan", () => {
  it("runs every dropout at the first seed, dropout by dropout across the models, then the other seeds", () => {
    const plan = gridPlan(spec, new Map());
    expect(plan.map((p) => `${p.model}/${p.seed}/${p.ready ? p.dropout : "?"}`)).toEqual([
      "sasrec/42/0.1",
      "narm/42/0.1",
      "sasrec/42/0.2",
      "narm/42/0.2",
      "sasrec/42/0.3",
      "narm/42/0.3",
      "sasrec/7/?",
      "narm/7/?",
      "sasrec/1/?",
      "narm/1/?",
    ]);
  });

  it("picks the dropout with the best validation once every first-seed run of the model finished", () => {
    const partial = new Map([done("sasrec", 0.1, 42, 0.1), done("sasrec", 0.2, 42, 0.14)]);
    expect(chosenDropout(spec, "sasrec", partial)).toBeNull();
    const all = new Map([...partial, done("sasrec", 0.3, 42, 0.12)]);
    expect(chosenDropout(spec, "sasrec", all)).toBe(0.2);
    const plan = gridPlan(spec, all);
    expect(plan.find((p) => p.model === "sasrec" && p.seed === 7)).toMatchObject({
      name: "sasrec-d0.2-s7",
      ready: true,
    });
    expect(plan.find((p) => p.model === "narm" && p.seed === 7)?.ready).toBe(false);
    // Ties go to the smaller dropout (the first in the list).
    const tie = new Map([
      done("narm", 0.1, 42, 0.05),
      done("narm", 0.2, 42, 0.07),
      done("narm", 0.3, 42, 0.07),
    ]);
    expect(chosenDropout(spec, "narm", tie)).toBe(0.2);
  });

  it("standard errors and the issue's tolerance", () => {
    expect(meanSd([1, 3])).toEqual({ mean: 2, sd: Math.SQRT2 });
    expect(meanSd([5])).toEqual({ mean: 5, sd: 0 });
    // Two seeds, four users: seed-averaged per-user values 0.5, 0.5, 0, 1 → SD 0.408, SE 0.204.
    const se = perUserStandardError([
      [1, 0, 0, 1],
      [0, 1, 0, 1],
    ]);
    expect(se).toBeCloseTo(Math.sqrt(1 / 6) / 2, 12);
    expect(withinTolerance(0.108, 0.1, 0)).toBe(true); // +8%
    expect(withinTolerance(0.08, 0.1, 0.005)).toBe(false); // −20%, 4 SE
    expect(withinTolerance(0.08, 0.1, 0.011)).toBe(true); // −20% but within 2 SE
  });

  it("names each run's evaluation protocol from its metrics.json policy", () => {
    // The strings the trainer writes (metrics.json "policy").
    const official = {
      ...officialDefaults("ml-latest-small"),
      exclude: "input",
      valExclude: "none",
    } as const;
    expect(protocolOf(evaluationPolicy(official))).toBe("test exclusion input, validation exclusion none");
    expect(protocolOf(evaluationPolicy(officialDefaults("ml-latest-small")))).toBe(
      "test exclusion full, validation exclusion full",
    );
    // A run from before valExclude validated under its test exclusion.
    expect(protocolOf({ historyExclusion: "full: every item of the user's history …" })).toBe(
      "test exclusion full, validation exclusion full",
    );
    expect(protocolOf(undefined)).toBe("test exclusion ?, validation exclusion ?");
  });
});
