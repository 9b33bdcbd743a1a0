/**
 * The report's words: what each model was, and when its numbers cannot be compared with the paper's.
 * Plain functions of the run data, so the Markdown and the JSON say the same thing.
 */
import { basename } from "node:path";
import { OFFICIAL_MAX_EPOCHS } from "../retrievers/train-config.js";
import type { RankerData, RetrieverData, RunData } from "./run-data.js";

/** Display names of retriever ids, as the paper spells them. */
export const MODEL_LABELS: Readonly<Record<string, string>> = {
  lru: "LRURec",
  sasrec: "SASRec",
  bert4rec: "BERT4Rec",
  narm: "NARM",
  pop: "Popularity",
};

export function modelLabel(model: string): string {
  return MODEL_LABELS[model] ?? model;
}

/** The paper's ranker: Llama 2 7B (≈6.74 B parameters) fine-tuned with LoRA. */
const PAPER_RANKER_PARAMETERS = 6.74e9;

/** Short name of the ranker's base model: "scratch:tiny", or the file/folder name without ".gguf". */
export function rankerLabel(ranker: RankerData): string {
  if (ranker.model.startsWith("scratch:")) return ranker.model;
  return basename(ranker.model.replace(/[\\/]+$/, "")).replace(/\.gguf$/i, "");
}

/** "1.2 M", "6.7 B" parameters. */
export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

export interface RankerStatement {
  /** What the ranker was, in words. */
  description: string;
  /** Whether its numbers may be set beside the paper's LlamaRec column. */
  comparableWithPaper: boolean;
  /** Why not (empty when comparable). */
  reasons: string[];
}

/** What the ranker model was and whether the paper's numbers apply to it. */
export function describeRanker(ranker: RankerData): RankerStatement {
  const label = rankerLabel(ranker);
  const t = ranker.training;
  const scratch = ranker.model.startsWith("scratch:");
  const parts: string[] = [];
  if (scratch) {
    parts.push(
      `The ranker was \`${label}\`, a small Llama-architecture model with random initial weights trained from scratch in this run`,
    );
  } else {
    parts.push(`The ranker's base model was \`${ranker.model}\``);
  }
  if (t) {
    const mode =
      ranker.mode === "lora"
        ? `LoRA fine-tuning (${formatCount(t.trainableParameters)} trainable parameters)`
        : `${ranker.mode === "full" ? "full training" : "training"} of all ${formatCount(t.trainableParameters)} trainable parameters`;
    parts[0] += ` (${formatCount(t.totalParameters)} parameters), ${mode} for ${t.steps} steps on ${t.examplesSeen} prompts in ${formatSeconds(t.seconds)}${t.stoppedEarly ? ", stopped early" : ""}.`;
  } else {
    parts[0] += ", not trained in this run (ranked as given).";
  }
  if (ranker.backend) parts.push(`Ranking backend: ${ranker.backend}.`);
  const reasons: string[] = [];
  if (scratch) {
    reasons.push(
      "it is a tiny model trained from scratch on this dataset's prompts, not the pretrained Llama 2 7B the paper fine-tunes, so it cannot read movie titles with any prior knowledge",
    );
  } else if (t && t.totalParameters < 0.8 * PAPER_RANKER_PARAMETERS) {
    reasons.push(
      `its base model has ${formatCount(t.totalParameters)} parameters, not the paper's Llama 2 7B (${formatCount(PAPER_RANKER_PARAMETERS)})`,
    );
  } else if (!t) {
    reasons.push("the run records no training of the ranker (the paper fine-tunes Llama 2 7B with LoRA)");
  }
  if (!scratch && t && ranker.mode !== null && ranker.mode !== "lora") {
    reasons.push(
      `it was trained in "${ranker.mode}" mode, the paper uses LoRA (r 8, alpha 32, q/v projections)`,
    );
  }
  if (reasons.length === 0) {
    parts.push(
      "Its size and training mode match the paper's setting (Llama 2 7B with LoRA); its numbers may be compared with the paper's LlamaRec results if the base model is Llama 2 7B.",
    );
  } else {
    parts.push(`Its numbers cannot be compared with the paper's LlamaRec ranker: ${reasons.join("; ")}.`);
  }
  return { description: parts.join(" "), comparableWithPaper: reasons.length === 0, reasons };
}

export function formatSeconds(s: number): string {
  if (s < 90) return `${s.toFixed(0)} s`;
  if (s < 5400) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/** Words about the retriever's training that bear on comparing it with published numbers. */
export function describeRetriever(retriever: RetrieverData): string {
  const label = modelLabel(retriever.model);
  const sel = retriever.selection ?? {};
  const iterations = typeof sel.iterations === "number" ? sel.iterations : undefined;
  const best = typeof sel.bestIteration === "number" ? sel.bestIteration : undefined;
  const stoppedBy = typeof sel.stoppedBy === "string" ? sel.stoppedBy : undefined;
  const seconds = typeof sel.trainingSeconds === "number" ? sel.trainingSeconds : undefined;
  let text = `The retriever was ${label}`;
  if (iterations !== undefined) {
    text += `, trained for ${iterations} iterations${seconds !== undefined ? ` (${formatSeconds(seconds)})` : ""}`;
    if (best !== undefined) text += `, best validation Recall@10 at iteration ${best}`;
  }
  text += ".";
  if (stoppedBy === "max-epochs" && retriever.maxEpochs === OFFICIAL_MAX_EPOCHS) {
    text += ` Training ran to the official ${OFFICIAL_MAX_EPOCHS}-epoch limit before early stopping (patience 20 validations) ended it; the authors' code (num_epochs ${OFFICIAL_MAX_EPOCHS}) stops there too.`;
  } else if (stoppedBy !== undefined && stoppedBy !== "early-stopping") {
    const limit = /epoch|exhausted/.test(stoppedBy) ? "epoch" : "iteration";
    text += ` Training was cut by its ${limit} limit (${stoppedBy}), not by early stopping as in the paper (patience 20 validations), so it may fall short of the paper's numbers.`;
  }
  return text;
}

/** One line per run: dataset, models. */
export function describeRun(run: RunData): string {
  const parts = [
    `dataset ${run.dataset.name} (${run.dataset.numUsers} users, ${run.dataset.numItems} items)`,
  ];
  if (run.retriever) parts.push(`retriever ${modelLabel(run.retriever.model)}`);
  if (run.ranker) parts.push(`ranker ${rankerLabel(run.ranker)}`);
  return parts.join(", ");
}
