/**
 * The baseline grid's plan (issue 9's protocol), as pure functions of what has finished, so the driver
 * (bench/grid.ts) can be killed at any moment and re-derive where it was from the run folders alone.
 *
 * Order:
 *   1. every dropout at the first seed, dropout by dropout and in each the models in the given order (SASRec,
 *      BERT4Rec, NARM by default), so every model's first results come early — validation Recall@10 of these
 *      runs picks each model's dropout;
 *   2. each model's chosen dropout at the second seed (ready once all of that model's step 1 has finished);
 * then, for every further seed, the chosen dropout of each model in turn.
 */

export interface GridSpec {
  models: readonly string[];
  dropouts: readonly number[];
  /** seeds[0] runs every dropout; the others run the validation-chosen dropout only. */
  seeds: readonly number[];
}

export interface GridRun {
  name: string;
  model: string;
  dropout: number;
  seed: number;
}

/** What the plan needs to know of a finished run: its best validation value (Recall@10). */
export interface FinishedRun extends GridRun {
  valBest: number;
}

/** A planned run: `ready` once its dropout is known (always for the first seed). */
export interface PlannedRun extends GridRun {
  ready: boolean;
}

export function runName(model: string, dropout: number, seed: number): string {
  return `${model}-d${dropout}-s${seed}`;
}

/**
 * The validation-chosen dropout of a model: the highest best-validation value among its first-seed runs
 * (ties: the smaller dropout), or null until every dropout of the first seed has finished.
 */
export function chosenDropout(
  spec: GridSpec,
  model: string,
  finished: ReadonlyMap<string, FinishedRun>,
): number | null {
  let best: FinishedRun | null = null;
  for (const d of spec.dropouts) {
    const run = finished.get(runName(model, d, spec.seeds[0]!));
    if (!run) return null;
    if (best === null || run.valBest > best.valBest) best = run;
  }
  return best?.dropout ?? null;
}

/** Every run of the grid in execution order; runs whose dropout is not known yet use the first dropout
 * as a placeholder and are not ready. */
export function gridPlan(spec: GridSpec, finished: ReadonlyMap<string, FinishedRun>): PlannedRun[] {
  if (spec.models.length === 0 || spec.dropouts.length === 0 || spec.seeds.length === 0)
    throw new RangeError("grid: models, dropouts and seeds must not be empty");
  const plan: PlannedRun[] = [];
  const later = (model: string, seed: number) => {
    const d = chosenDropout(spec, model, finished);
    const dropout = d ?? spec.dropouts[0]!;
    plan.push({ name: runName(model, dropout, seed), model, dropout, seed, ready: d !== null });
  };
  const seed = spec.seeds[0]!;
  for (const dropout of spec.dropouts)
    for (const model of spec.models)
      plan.push({ name: runName(model, dropout, seed), model, dropout, seed, ready: true });
  for (const s of spec.seeds.slice(1)) for (const model of spec.models) later(model, s);
  return plan;
}

/** Mean, sample standard deviation (0 for one value) of numbers. */
export function meanSd(xs: readonly number[]): { mean: number; sd: number } {
  const n = xs.length;
  if (n === 0) return { mean: Number.NaN, sd: Number.NaN };
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n === 1) return { mean, sd: 0 };
  const v = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1);
  return { mean, sd: Math.sqrt(v) };
}

/**
 * Standard error of a metric's mean over users, for the seed-averaged per-user values: perUser[s][u] is
 * seed s's value for user u (same users in every seed). Users are the sampling unit of the test set.
 */
export function perUserStandardError(perUser: readonly (readonly number[])[]): number {
  if (perUser.length === 0) return Number.NaN;
  const n = perUser[0]!.length;
  if (n < 2 || perUser.some((p) => p.length !== n)) return Number.NaN;
  const avg = Array.from({ length: n }, (_, u) => perUser.reduce((a, p) => a + p[u]!, 0) / perUser.length);
  return meanSd(avg).sd / Math.sqrt(n);
}

/** Within the tolerance: ±10% of the paper's value, or within two standard errors of it. */
export function withinTolerance(ours: number, paper: number, se: number): boolean {
  return Math.abs(ours - paper) <= 0.1 * paper || Math.abs(ours - paper) <= 2 * se;
}

/** The policy strings a run's metrics.json states beside its numbers (src/retrievers/run-evaluation.ts). */
export interface EvaluationPolicy {
  historyExclusion?: string;
  validationDuringTraining?: string;
}

/**
 * "test exclusion X, validation exclusion Y" of a finished run, so that runs evaluated under different
 * protocols are not averaged unnoticed. Runs from before `valExclude` state no validation policy: they
 * validated under the test's exclusion.
 */
export function protocolOf(policy: EvaluationPolicy | undefined): string {
  const test = policy?.historyExclusion?.split(":")[0] ?? "?";
  const val = /^history exclusion (\w+)/.exec(policy?.validationDuringTraining ?? "")?.[1] ?? test;
  return `test exclusion ${test}, validation exclusion ${val}`;
}
