import { describe, expect, it } from "vitest";
import { GgufFile } from "../../src/llm/gguf/reader.js";
import { tokenizerFromGguf } from "../../src/llm/tokenizer/gguf.js";
import { SpmTokenizer } from "../../src/llm/tokenizer/spm.js";
import { PromptBuilder } from "../../src/ranker/prompt.js";
import { logSoftmax, Verbalizer } from "../../src/ranker/verbalizer.js";
import { builtinSpmVocab } from "../fixtures/tiny-llama.js";
import { TINY_LLAMA2_GGUF } from "../llm/shared-model.js";

const tok = new SpmTokenizer({ ...builtinSpmVocab(), addBos: true, addSpacePrefix: true });

describe("Verbalizer", () => {
  it("answer-position ids are the bare letters, isolated ids the ▁-prefixed ones", () => {
    const answer = Verbalizer.create(tok);
    const isolated = Verbalizer.create(tok, { mode: "isolated" });
    expect(answer.letters).toEqual(Array.from("ABCDEFGHIJKLMNOPQRST"));
    expect(answer.ids.map((id) => tok.idToToken(id))).toEqual(answer.letters);
    expect(isolated.ids.map((id) => tok.idToToken(id))).toEqual(answer.letters.map((l) => `▁${l}`));
    expect(Verbalizer.create(tok, { count: 5 }).ids).toEqual(answer.ids.slice(0, 5));
  });

  it("forPrompt uses the builder's own template", () => {
    expect(Verbalizer.forPrompt(new PromptBuilder(tok)).ids).toEqual(Verbalizer.create(tok).ids);
    // A marker without the trailing newline: the letter follows ":" directly and is still the bare "A".
    const spaced = new PromptBuilder(tok, { template: "{instruction}\n{input}\nAnswer:" });
    expect(Verbalizer.forPrompt(spaced).ids.map((id) => tok.idToToken(id))[0]).toBe("A");
  });

  it("throws when a letter does not stay one token after the prompt", () => {
    // With this context "x" + "A"... merges: "▁A" exists, so a context ending in a space swallows the letter.
    expect(() => Verbalizer.create(tok, { context: "Answer: " })).toThrow(/not exactly one token/);
  });

  it("scores = log-softmax over the letter logits", () => {
    const v = Verbalizer.create(tok, { count: 3 });
    const logits = new Float32Array(tok.vocabSize).fill(-5);
    logits[v.ids[0]!] = 2;
    logits[v.ids[1]!] = 1;
    logits[v.ids[2]!] = 0;
    const s = v.scoreLogits(logits);
    const z = Math.log(Math.exp(2) + Math.exp(1) + 1);
    expect(Array.from(s)).toEqual(Array.from(Float32Array.of(2 - z, 1 - z, -z)));
    expect(Array.from(v.scoreLogits(logits, 2))).toHaveLength(2);
  });

  it("logSoftmax ignores a per-row constant and survives -Infinity", () => {
    const a = logSoftmax([1, 2, 3]);
    const b = logSoftmax([101, 102, 103]);
    for (let i = 0; i < 3; i++) expect(a[i]).toBeCloseTo(b[i]!, 5);
    expect(Array.from(logSoftmax([0, Number.NEGATIVE_INFINITY]))).toEqual([0, Number.NEGATIVE_INFINITY]);
    expect(Array.from(logSoftmax([Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY]))).toEqual(
      Array.from(Float32Array.of(-Math.LN2, -Math.LN2)),
    );
  });
});

describe("Verbalizer on the Llama 2 tokenizer", () => {
  it("answer-position ids (29909 = 'A' …) differ from the official isolated ids (319 = '▁A' …)", () => {
    const f = GgufFile.open(TINY_LLAMA2_GGUF);
    const llama2 = tokenizerFromGguf(f);
    f.close();
    const answer = Verbalizer.create(llama2);
    const isolated = Verbalizer.create(llama2, { mode: "isolated" });
    expect(answer.ids).toEqual([
      29909, 29933, 29907, 29928, 29923, 29943, 29954, 29950, 29902, 29967, 29968, 29931, 29924, 29940, 29949,
      29925, 29984, 29934, 29903, 29911,
    ]);
    expect(isolated.ids).toEqual([
      319, 350, 315, 360, 382, 383, 402, 379, 306, 435, 476, 365, 341, 405, 438, 349, 660, 390, 317, 323,
    ]);
  });
});
