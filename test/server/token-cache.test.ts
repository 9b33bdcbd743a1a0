/**
 * The server's caching tokenizer (src/server/token-cache.ts): the same ids as the tokenizer it wraps (with
 * and without BOS, which are different answers), prompts built through it identical, callers cannot corrupt
 * the cache by mutating an answer, least recently used texts dropped beyond the capacity, long texts not
 * cached.
 */
import { describe, expect, it } from "vitest";
import { PromptBuilder } from "../../src/ranker/prompt.js";
import { tokenizerFrom } from "../../src/ranker/training/model-source.js";
import { CachingTokenizer } from "../../src/server/token-cache.js";

const inner = tokenizerFrom("models/llama-2-tiny-random.gguf").tokenizer;
const titles = [
  "Toy Story (1995)",
  "Jumanji (1995)",
  "Grumpier Old Men (1995)",
  "Léon: The Professional (a.k.a. The Professional) (Léon) (1994)",
  "City of Lost Children, The (Cité des enfants perdus, La) (1995)",
];

describe("caching tokenizer", () => {
  it("answers what the wrapped tokenizer answers, BOS or not, first time and cached", () => {
    const t = new CachingTokenizer(inner);
    for (let pass = 0; pass < 2; pass++) {
      for (const title of titles) {
        expect(t.encode(title, { addBos: false })).toEqual(inner.encode(title, { addBos: false }));
        expect(t.encode(title, { addBos: true })).toEqual(inner.encode(title, { addBos: true }));
        expect(t.encode(title)).toEqual(inner.encode(title));
      }
    }
    expect(inner.encode(titles[0]!, { addBos: true })).not.toEqual(
      inner.encode(titles[0]!, { addBos: false }),
    );
    expect(t.hits).toBeGreaterThan(0);
    expect(t.decode(t.encode(titles[3]!, { addBos: false }))).toBe(
      inner.decode(inner.encode(titles[3]!, { addBos: false })),
    );
  });

  it("builds the same ranking prompts as the plain tokenizer", () => {
    const plain = new PromptBuilder(inner, { maxTitleTokens: 6 });
    const cached = new PromptBuilder(new CachingTokenizer(inner), { maxTitleTokens: 6 });
    for (let r = 0; r < 3; r++) {
      const example = { history: titles.slice(r), candidates: [...titles].reverse() };
      expect(cached.build(example)).toEqual(plain.build(example));
    }
  });

  it("a caller mutating an answer does not change the next answer", () => {
    const t = new CachingTokenizer(inner);
    const first = t.encode(titles[1]!, { addBos: false });
    const expected = [...first];
    first.length = 1;
    first[0] = -5;
    expect(t.encode(titles[1]!, { addBos: false })).toEqual(expected);
    t.encode(titles[1]!, { addBos: false }).push(7);
    expect(t.encode(titles[1]!, { addBos: false })).toEqual(expected);
  });

  it("keeps at most `capacity` texts, dropping the least recently used; long texts pass through", () => {
    const t = new CachingTokenizer(inner, { capacity: 2, maxLength: 30 });
    t.encode(titles[0]!); // miss
    t.encode(titles[1]!); // miss
    t.encode(titles[0]!); // hit: titles[1] is now the least recently used
    t.encode(titles[2]!); // miss, drops titles[1]
    expect(t.size).toBe(2);
    const misses = t.misses;
    t.encode(titles[0]!);
    expect(t.misses).toBe(misses);
    t.encode(titles[1]!);
    expect(t.misses).toBe(misses + 1);
    const long = titles[3]!;
    expect(long.length).toBeGreaterThan(30);
    expect(t.encode(long)).toEqual(inner.encode(long));
    expect(t.size).toBe(2);
  });
});
