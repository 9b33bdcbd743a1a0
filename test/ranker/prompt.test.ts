import { describe, expect, it } from "vitest";
import { GgufFile } from "../../src/llm/gguf/reader.js";
import { tokenizerFromGguf } from "../../src/llm/tokenizer/gguf.js";
import { SpmTokenizer } from "../../src/llm/tokenizer/spm.js";
import { indexLetter, PAPER_PROMPT, PromptBuilder } from "../../src/ranker/prompt.js";
import { Verbalizer } from "../../src/ranker/verbalizer.js";
import { builtinSpmVocab } from "../fixtures/tiny-llama.js";
import { TINY_LLAMA2_GGUF } from "../llm/shared-model.js";

const tok = new SpmTokenizer({ ...builtinSpmVocab(), addBos: true, addSpacePrefix: true });

describe("PromptBuilder", () => {
  it("renders the official alpaca_short prompt character for character", () => {
    const b = new PromptBuilder(tok);
    const text = b.render(
      ["Toy Story (1995)", "Heat (1995)"],
      ["Casino (1995)", "Sabrina (1995)", "Balto (1995)"],
    );
    expect(text).toBe(
      "### Instruction:\n" +
        "Given user history in chronological order, recommend an item from the candidate pool with its index letter.\n\n" +
        "### Input:\n" +
        "User history: (1) Toy Story (1995) \n (2) Heat (1995); \n Candidate pool: (A) Casino (1995) \n (B) Sabrina (1995) \n (C) Balto (1995)\n\n" +
        "### Response:\n",
    );
    const built = b.build({
      history: ["Toy Story (1995)", "Heat (1995)"],
      candidates: ["Casino (1995)", "Sabrina (1995)", "Balto (1995)"],
    });
    expect(built.text).toBe(text);
    expect(built.ids).toEqual(tok.encode(text, { addBos: true }));
    expect(built.ids[0]).toBe(tok.bosId);
    expect(built.historyUsed).toBe(2);
  });

  it("keeps the 20 most recent history items, numbered from 1", () => {
    const b = new PromptBuilder(tok);
    const history = Array.from({ length: 25 }, (_, i) => `m${i}`);
    const built = b.build({ history, candidates: ["x"] });
    expect(built.historyUsed).toBe(20);
    expect(built.text).toContain("User history: (1) m5 \n (2) m6");
    expect(built.text).toContain("(20) m24; \n Candidate pool: (A) x");
    expect(built.text).not.toContain("m4 ");
  });

  it("cuts titles to maxTitleTokens tokens like the official truncate_title", () => {
    const b = new PromptBuilder(tok, { maxTitleTokens: 3 });
    expect(b.truncateTitle("the item of")).toBe("the item of");
    expect(b.truncateTitle("the item of the index")).toBe("the item of");
    // Mid-word cut: the first 3 pieces of "Toy Story Saga" are ▁Toy ▁Story ▁S.
    expect(b.truncateTitle("Toy Story Saga")).toBe("Toy Story S");
  });

  it("drops the oldest history when over budget, never the candidates or the response marker", () => {
    const history = Array.from({ length: 20 }, (_, i) => `Movie number ${i} with a rather long title`);
    const candidates = Array.from({ length: 20 }, (_, i) => `Candidate ${indexLetter(i)}`);
    const full = new PromptBuilder(tok).build({ history, candidates });
    const budget = full.ids.length - 40;
    const b = new PromptBuilder(tok, { maxPromptTokens: budget });
    const cut = b.build({ history, candidates });
    expect(cut.ids.length).toBeLessThanOrEqual(budget);
    expect(cut.historyUsed).toBeLessThan(20);
    expect(cut.historyUsed).toBeGreaterThan(10);
    // The kept items are the most recent ones, renumbered from (1).
    expect(cut.text).toContain(`(1) Movie number ${20 - cut.historyUsed} `);
    expect(cut.text).toContain(`(${cut.historyUsed}) Movie number 19 `);
    for (const c of candidates) expect(cut.text).toContain(c);
    expect(cut.text.endsWith("### Response:\n")).toBe(true);
    expect(cut.text.startsWith("### Instruction:\n")).toBe(true);
    // One more history item would not have fit.
    const oneMore = b.render(
      history.slice(20 - cut.historyUsed - 1),
      candidates.map((t) => b.truncateTitle(t)),
    );
    expect(tok.encode(oneMore).length).toBeGreaterThan(budget);
  });

  it("throws a clear error when candidates alone exceed the budget", () => {
    const b = new PromptBuilder(tok, { maxPromptTokens: 20 });
    expect(() => b.build({ history: ["a"], candidates: ["the item", "of the"] })).toThrow(
      /without any history/,
    );
    expect(() => b.build({ history: [], candidates: [] })).toThrow(/at least one candidate/);
  });

  it("builds training examples: prompt + letter + EOS, loss on the last two tokens only", () => {
    const b = new PromptBuilder(tok);
    const v = Verbalizer.create(tok);
    const ex = {
      history: ["Toy Story (1995)"],
      candidates: ["Heat (1995)", "Casino (1995)", "Balto (1995)"],
    };
    const t = b.buildTraining(ex, 2, v.ids);
    const prompt = b.build(ex);
    expect(t.ids).toEqual([...prompt.ids, v.ids[2], tok.eosId]);
    // Same ids as tokenizing the official full_prompt (prompt + "C") and appending EOS.
    expect(t.ids).toEqual([...tok.encode(`${prompt.text}C`), tok.eosId]);
    expect(Array.from(t.labelMask)).toEqual([...new Array(prompt.ids.length).fill(0), 1, 1]);
    expect(() => b.buildTraining(ex, 3, v.ids)).toThrow(/outside the 3 candidates/);
  });

  it("keeps the paper's defaults", () => {
    expect(PAPER_PROMPT).toMatchObject({
      maxHistory: 20,
      maxTitleTokens: 32,
      maxPromptTokens: 1536,
      itemSeparator: " \n ",
    });
  });
});

describe("PromptBuilder with the Llama 2 tokenizer", () => {
  it("ends with the newline byte token 13, as the official collator asserts", () => {
    const f = GgufFile.open(TINY_LLAMA2_GGUF);
    const llama2 = tokenizerFromGguf(f);
    f.close();
    const b = new PromptBuilder(llama2);
    const p = b.build({ history: ["Toy Story (1995)"], candidates: ["Heat (1995)", "Casino (1995)"] });
    expect(p.ids.at(-1)).toBe(13);
    const t = b.buildTraining(
      { history: ["Toy Story (1995)"], candidates: ["Heat (1995)", "Casino (1995)"] },
      0,
      Verbalizer.create(llama2).ids,
    );
    expect(t.ids.slice(-3)).toEqual([13, 29909, 2]); // official: input_ids[-3] == 13 and input_ids[-1] == 2
  });
});
