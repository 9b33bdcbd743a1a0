/**
 * The ranker's training and validation sets as prompt/completion JSON lines, for GPU trainers (TRL's
 * SFTTrainer prompt-completion format, PEFT, axolotl):
 *
 *   {"prompt": "### Instruction:\n…### Response:\n", "completion": "C</s>", "user": 12, "answer": 345}
 *
 * The prompt is the exact text our PromptBuilder tokenizes (without BOS: trainers add it), history already
 * cut to fit the token budget; completion = answer letter + the tokenizer's EOS text, so loss on the
 * completion only is the official llm_train_on_inputs = false. Training lines use epoch-0 negatives and
 * letter order (the same examples our trainer sees first). Files: train.jsonl, val.jsonl (+ test.jsonl).
 * Written through a temp file and renamed, so a reader never sees half a file.
 */
import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Dataset } from "../../data/dataset.js";
import { indexLetter, type PromptBuilder } from "../prompt.js";
import { type RankingInstance, type TrainingExamples, toRankingExample } from "./examples.js";

export interface ExportedLine {
  prompt: string;
  completion: string;
  user: number;
  /** Answer item id (for joining back). */
  answer: number;
}

export function exportLine(
  dataset: Dataset,
  prompts: PromptBuilder,
  instance: RankingInstance,
  eosText: string,
): ExportedLine {
  // Two tokens (letter + EOS) are reserved inside the budget, as in PromptBuilder.buildTraining.
  const built = prompts.build(toRankingExample(dataset, instance), prompts.config.maxPromptTokens - 2);
  return {
    prompt: built.text,
    completion: `${indexLetter(instance.answerIndex)}${eosText}`,
    user: instance.user,
    answer: instance.candidates[instance.answerIndex]!,
  };
}

/** Streams lines to `path` atomically; returns the number written. */
export async function writeJsonLines(path: string, lines: Iterable<unknown>): Promise<number> {
  await mkdir(join(path, ".."), { recursive: true });
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  const stream = createWriteStream(tmp);
  let count = 0;
  try {
    for (const line of lines) {
      if (!stream.write(`${JSON.stringify(line)}\n`)) {
        await new Promise<void>((resolve) => stream.once("drain", () => resolve()));
      }
      count++;
    }
    await new Promise<void>((resolve, reject) =>
      stream.end((err?: Error | null) => (err ? reject(err) : resolve())),
    );
    await rename(tmp, path);
  } catch (err) {
    stream.destroy();
    await rm(tmp, { force: true });
    throw err;
  }
  return count;
}

export interface ExportOptions {
  dataset: Dataset;
  prompts: PromptBuilder;
  training: TrainingExamples;
  validation: readonly RankingInstance[];
  test?: readonly RankingInstance[];
  /** Text appended after the letter; default the tokenizer's EOS token text (Llama 2: "</s>"). */
  eosText?: string;
  /** Cap on training lines (first N of the epoch-0 order); default all. */
  maxTrainExamples?: number;
}

export interface ExportCounts {
  train: number;
  val: number;
  test: number;
  files: string[];
}

export async function exportTrainingSets(dir: string, options: ExportOptions): Promise<ExportCounts> {
  const { dataset, prompts, training } = options;
  const tok = prompts.tokenizer;
  const eosText = options.eosText ?? (tok.eosId === null ? undefined : tok.idToToken(tok.eosId)) ?? "</s>";
  const limit = Math.min(training.length, options.maxTrainExamples ?? training.length);
  const order = training.order(0);
  function* trainLines() {
    for (let i = 0; i < limit; i++)
      yield exportLine(dataset, prompts, training.instance(order[i]!, 0), eosText);
  }
  const files = [join(dir, "train.jsonl"), join(dir, "val.jsonl")];
  const train = await writeJsonLines(files[0]!, trainLines());
  const val = await writeJsonLines(
    files[1]!,
    options.validation.map((inst) => exportLine(dataset, prompts, inst, eosText)),
  );
  let test = 0;
  if (options.test) {
    files.push(join(dir, "test.jsonl"));
    test = await writeJsonLines(
      files[2]!,
      options.test.map((inst) => exportLine(dataset, prompts, inst, eosText)),
    );
  }
  return { train, val, test, files };
}
