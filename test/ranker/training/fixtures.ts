import type { Dataset } from "../../../src/data/dataset.js";
import type { Tokenizer } from "../../../src/llm/tokenizer/types.js";
import type { CandidateRecord } from "../../../src/retrievers/candidates.js";

/** One token per UTF-16 code unit below 128 (ids 3..130); 0 pad, 1 BOS, 2 EOS. Enough for prompt tests. */
export function charTokenizer(): Tokenizer {
  return {
    kind: "hf",
    vocabSize: 131,
    bosId: 1,
    eosId: 2,
    addBosByDefault: true,
    encode(text, options) {
      const ids = [...text].map((c) => 3 + (c.charCodeAt(0) & 127));
      return (options?.addBos ?? true) ? [1, ...ids] : ids;
    },
    decode(ids, options) {
      const skip = options?.skipSpecial ?? true;
      return ids
        .filter((id) => !(skip && id < 3))
        .map((id) => (id < 3 ? `<${id}>` : String.fromCharCode(id - 3)))
        .join("");
    },
    tokenToId(token) {
      return token.length === 1 ? 3 + (token.charCodeAt(0) & 127) : undefined;
    },
    idToToken(id) {
      return id >= 3 && id < 131 ? String.fromCharCode(id - 3) : undefined;
    },
  };
}

/** A Dataset from per-user full sequences: the last two items become val and test. Titles "I<n>". */
export function datasetFromSequences(numItems: number, sequences: number[][]): Dataset {
  return {
    name: "fixture",
    numUsers: sequences.length,
    numItems,
    train: [[], ...sequences.map((s) => s.slice(0, -2))],
    val: [0, ...sequences.map((s) => s[s.length - 2] ?? 0)],
    test: [0, ...sequences.map((s) => s[s.length - 1] ?? 0)],
    titles: ["", ...Array.from({ length: numItems }, (_, i) => `I${i + 1}`)],
    userIds: ["", ...sequences.map((_, u) => `u${u + 1}`)],
    itemIds: ["", ...Array.from({ length: numItems }, (_, i) => `${i + 1}`)],
  };
}

/** Deterministic LCG in [0, 1). */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/**
 * Hand-made retriever candidates: for a share `coverage` of users the label is among the 20, at a
 * position drawn at random; the others get 20 non-label items. Scores decrease with position.
 */
export function fakeCandidates(
  dataset: Dataset,
  split: "val" | "test",
  options: { coverage?: number; count?: number; seed?: number } = {},
): CandidateRecord[] {
  const rand = lcg(options.seed ?? 7);
  const count = options.count ?? 20;
  const coverage = options.coverage ?? 0.8;
  const out: CandidateRecord[] = [];
  for (let u = 1; u <= dataset.numUsers; u++) {
    const label = split === "val" ? dataset.val[u]! : dataset.test[u]!;
    const covered = rand() < coverage;
    const items: number[] = [];
    while (items.length < count) {
      const item = 1 + Math.floor(rand() * dataset.numItems);
      if (item !== label && !items.includes(item)) items.push(item);
    }
    const labelRank = covered ? 1 + Math.floor(rand() * count) : count + 1 + Math.floor(rand() * 10);
    if (covered) items[labelRank - 1] = label;
    out.push({
      split,
      user: u,
      label,
      labelRank,
      candidates: items,
      scores: items.map((_, i) => 10 - i * 0.1),
    });
  }
  return out;
}
