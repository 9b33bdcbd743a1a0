/**
 * Bookkeeping of one stage in the run's config.json: the hash of its inputs, status, outputs, wall time
 * and peak memory. The pipeline decides from it whether a stage is skipped (done, same inputs, outputs
 * present), resumed (interrupted with the same inputs) or run afresh.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { isAbsolute, join, relative } from "node:path";
import { type StageRecord, updateRunConfig } from "../run/index.js";

/** sha256 of a JSON value with sorted object keys (so key order never changes a hash). */
export function hashInputs(value: unknown): string {
  const canonical = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(canonical);
    if (v && typeof v === "object") {
      return Object.fromEntries(
        Object.keys(v as Record<string, unknown>)
          .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
          .sort()
          .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
      );
    }
    return v;
  };
  return `sha256:${createHash("sha256")
    .update(JSON.stringify(canonical(value)))
    .digest("hex")}`;
}

export type StageDecision = "skip" | "resume" | "fresh";

export function decide(record: StageRecord | undefined, inputsHash: string, root: string): StageDecision {
  if (!record || record.inputsHash !== inputsHash) return "fresh";
  if (record.status === "done") {
    const present = record.outputs.every((o) => existsSync(isAbsolute(o) ? o : join(root, o)));
    return present ? "skip" : "fresh";
  }
  return record.status === "running" ? "resume" : "fresh";
}

/** Samples the resident set size while a stage runs (the process's lifetime maxRSS is not per stage). */
export class PeakMemory {
  private peak = process.memoryUsage.rss();
  private readonly timer: NodeJS.Timeout;

  constructor(intervalMs = 200) {
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  sample(): void {
    this.peak = Math.max(this.peak, process.memoryUsage.rss());
  }

  stop(): number {
    this.sample();
    clearInterval(this.timer);
    return this.peak;
  }
}

export async function writeStageRecord(runDir: string, stage: string, record: StageRecord): Promise<void> {
  await updateRunConfig(runDir, (config) => {
    config.stages = { ...(config.stages ?? {}), [stage]: record };
  });
}

/** Forgets the records of `stages` (downstream of a stage that runs again). */
export async function clearStageRecords(runDir: string, stages: readonly string[]): Promise<void> {
  await updateRunConfig(runDir, (config) => {
    if (!config.stages) return;
    for (const s of stages) delete config.stages[s];
  });
}

export function relativeOutputs(root: string, paths: readonly string[]): string[] {
  return paths.map((p) => (isAbsolute(p) ? relative(root, p) : p));
}

export const MIB = 1024 * 1024;
