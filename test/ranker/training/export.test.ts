import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PromptBuilder } from "../../../src/ranker/prompt.js";
import { evaluationInstances, TrainingExamples } from "../../../src/ranker/training/examples.js";
import { exportTrainingSets } from "../../../src/ranker/training/export.js";
import { charTokenizer, datasetFromSequences, fakeCandidates, lcg } from "./fixtures.js";

const rand = lcg(9);
const dataset = datasetFromSequences(
  100,
  Array.from({ length: 10 }, () => Array.from({ length: 8 }, () => 1 + Math.floor(rand() * 100))),
);
const dir = await mkdtemp(join(tmpdir(), "llamarec-export-"));
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("exportTrainingSets", () => {
  it("writes prompt/completion lines whose prompt + completion is the training sequence", async () => {
    const tokenizer = charTokenizer();
    const prompts = new PromptBuilder(tokenizer);
    const training = new TrainingExamples(dataset, 4);
    const validation = evaluationInstances(dataset, fakeCandidates(dataset, "val", { coverage: 1 }), "val");
    const counts = await exportTrainingSets(dir, {
      dataset,
      prompts,
      training,
      validation,
      eosText: "<eos>",
    });
    expect(counts.train).toBe(training.length);
    expect(counts.val).toBe(validation.length);
    expect((await readdir(dir)).sort()).toEqual(["train.jsonl", "val.jsonl"]);
    const lines = (await readFile(join(dir, "train.jsonl"), "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(training.length);
    const first = training.instance(training.order(0)[0]!, 0);
    expect(lines[0].user).toBe(first.user);
    expect(lines[0].completion).toBe(`${String.fromCharCode(65 + first.answerIndex)}<eos>`);
    expect(lines[0].answer).toBe(first.candidates[first.answerIndex]);
    expect(lines[0].prompt.endsWith("### Response:\n")).toBe(true);
    // The letter in the completion names the answer's title in the prompt.
    const letter = lines[0].completion[0];
    expect(lines[0].prompt).toContain(`(${letter}) I${lines[0].answer}`);
    // Same ids as the trainer's example, minus BOS and the letter + EOS.
    const ids = prompts.buildTraining(
      { history: first.history.map((i) => `I${i}`), candidates: first.candidates.map((i) => `I${i}`) },
      first.answerIndex,
      [...Array(20)].map((_, i) => 3 + 65 + i),
    ).ids;
    expect(tokenizer.encode(lines[0].prompt, { addBos: true })).toEqual(ids.slice(0, -2));
    const val = JSON.parse((await readFile(join(dir, "val.jsonl"), "utf8")).split("\n")[0]!);
    expect(val.answer).toBe(dataset.val[val.user]);
  });

  it("caps the training lines", async () => {
    const prompts = new PromptBuilder(charTokenizer());
    const training = new TrainingExamples(dataset, 4);
    const sub = join(dir, "capped");
    const counts = await exportTrainingSets(sub, {
      dataset,
      prompts,
      training,
      validation: [],
      maxTrainExamples: 5,
    });
    expect(counts.train).toBe(5);
    const first = JSON.parse((await readFile(join(sub, "train.jsonl"), "utf8")).split("\n")[0]!);
    // Default EOS text comes from the tokenizer (the char fixture has no text for id 2 -> "</s>").
    expect(first.completion.slice(1)).toBe("</s>");
  });
});
