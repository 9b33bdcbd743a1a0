import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import type { Llama, LlamaModel } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GgufFile } from "../../src/llm/gguf/reader.js";
import {
  ByteLevelBpeTokenizer,
  bytesToUnicode,
  preTokenize,
  preTokenizerRegexes,
} from "../../src/llm/tokenizer/bpe.js";
import { tokenizerFromGguf } from "../../src/llm/tokenizer/gguf.js";
import { HfTokenizer } from "../../src/llm/tokenizer/hf.js";
import { loadTokenizer } from "../../src/llm/tokenizer/index.js";
import { SpmTokenizer } from "../../src/llm/tokenizer/spm.js";
import type { Tokenizer } from "../../src/llm/tokenizer/types.js";
import { PAPER_PROMPT, PromptBuilder } from "../../src/ranker/prompt.js";
import {
  builtinSpmVocab,
  spmVocabFromGguf,
  trainByteLevelBpe,
  writeTinyLlama,
} from "../fixtures/tiny-llama.js";
import { TINY_LLAMA2_GGUF } from "./shared-model.js";

const LETTERS = Array.from({ length: 20 }, (_, i) => String.fromCharCode(65 + i));

function rankingPromptText(tok: Tokenizer): string {
  return new PromptBuilder(tok).render(
    [
      "Toy Story (1995)",
      "Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)",
      "Léon: The Professional (1994)",
    ],
    ["Heat (1995)", "Seven (a.k.a. Se7en) (1995)", "千と千尋の神隠し (2001)", "  Spaced  Out  "],
  );
}

/** Texts whose ids must equal llama.cpp's: prompt pieces, unicode, spaces, newlines, letters in answer position. */
function probeTexts(tok: Tokenizer): string[] {
  const response = "### Response:\n";
  return [
    rankingPromptText(tok),
    PAPER_PROMPT.instruction,
    "Hello world",
    " leading space",
    "   three leading spaces",
    "trailing spaces   ",
    "a\nb\n\nc\r\n",
    "\n",
    " ",
    "tab\there",
    "Ñandú 🦙 llama — “quotes” …",
    "日本語のテキスト",
    "(1) Toy Story (1995) \n (2) Heat (1995)",
    ...LETTERS.map((l) => response + l),
    ...LETTERS.map((l) => `(${l}) `),
  ];
}

const SPM = new SpmTokenizer({ ...builtinSpmVocab(), addBos: true, addSpacePrefix: true });

describe("SentencePiece tokenizer (built-in vocabulary)", () => {
  it("prefixes ▁, merges by score, falls back to bytes, adds BOS", () => {
    const ids = SPM.encode("the item");
    expect(ids[0]).toBe(1);
    expect(ids.slice(1).map((i) => SPM.idToToken(i))).toEqual(["▁the", "▁item"]);
    // "\n" is not a piece: byte fallback <0x0A>; "é" → two UTF-8 bytes.
    expect(SPM.encode("a\né", { addBos: false }).map((i) => SPM.idToToken(i))).toEqual([
      "▁a",
      "<0x0A>",
      "<0xC3>",
      "<0xA9>",
    ]);
    expect(SPM.encode("", { addBos: false })).toEqual([]);
  });

  it("decodes what it encodes, dropping the dummy prefix and control tokens", () => {
    for (const t of ["Hello  world\n", " x", "Amélie 😀", "(A) Toy Story"])
      expect(SPM.decode(SPM.encode(t))).toBe(t);
    expect(SPM.decode([1, 2], { skipSpecial: false })).toBe("<s></s>");
  });

  it("maps the GGUF metadata to the same tokenizer; loadTokenizer opens files and folders", async () => {
    const dir = mkdtempSync(join(tmpdir(), "llamarec-tok-"));
    const paths = await writeTinyLlama(dir);
    const fromGguf = loadTokenizer(paths.gguf);
    expect(fromGguf.kind).toBe("spm");
    expect(loadTokenizer(paths.hfDir).kind).toBe("hf");
    expect(() => loadTokenizer(join(dir, "nope.gguf"))).toThrow(/no such file or folder/);
    for (const t of probeTexts(SPM)) expect(fromGguf.encode(t)).toEqual(SPM.encode(t));
  });
});

describe("byte-level BPE tokenizer", () => {
  const byteChar = bytesToUnicode();
  // Vocabulary: every byte, plus merges building "Ġthe" and "he" and "ll".
  const tokens = [...byteChar, "he", "Ġt", "Ġthe", "ll", "<|begin|>", "<|user|>"];
  const merges = ["h e", "Ġ t", "Ġt he", "l l"];
  const types = tokens.map((_, i) => (i === tokens.length - 2 ? 3 : i === tokens.length - 1 ? 4 : 1));
  const bpe = new ByteLevelBpeTokenizer({
    tokens,
    types,
    merges,
    pre: "llama-bpe",
    bosId: tokens.length - 2,
    eosId: null,
    addBos: true,
  });

  it("maps bytes to printable code points (GPT-2 table)", () => {
    expect(byteChar[32]).toBe("Ġ");
    expect(byteChar[10]).toBe("Ċ");
    expect(byteChar[65]).toBe("A");
    expect(new Set(byteChar).size).toBe(256);
  });

  it("splits with the llama3 and qwen2 regexes", () => {
    expect(preTokenize("Hello world's 12345!!\n\n x", preTokenizerRegexes("llama-bpe"))).toEqual([
      "Hello",
      " world",
      "'s",
      " ",
      "123",
      "45",
      "!!\n\n",
      " x",
    ]);
    expect(preTokenize("a 123", preTokenizerRegexes("qwen2"))).toEqual(["a", " ", "1", "2", "3"]);
    expect(preTokenize("a 123", preTokenizerRegexes("smollm"))).toEqual(["a", " ", "1", "2", "3"]);
    expect(preTokenize("I'M here", preTokenizerRegexes("llama-bpe"))).toEqual(["I", "'M", " here"]);
  });

  it("applies merges by rank, keeps user-defined tokens whole, decodes back", () => {
    const ids = bpe.encode("the hello<|user|>");
    expect(ids[0]).toBe(bpe.bosId);
    expect(ids.slice(1).map((i) => bpe.idToToken(i))).toEqual(["t", "he", "Ġ", "he", "ll", "o", "<|user|>"]);
    expect(bpe.encode(" the", { addBos: false }).map((i) => bpe.idToToken(i))).toEqual(["Ġthe"]);
    expect(bpe.decode(ids)).toBe("the hello<|user|>");
    expect(bpe.decode(bpe.encode("é 😀\n", { addBos: false }))).toBe("é 😀\n");
  });
});

describe("HF tokenizer.json (via @huggingface/tokenizers)", () => {
  it("agrees with the SentencePiece tokenizer on the built-in vocabulary", async () => {
    const dir = mkdtempSync(join(tmpdir(), "llamarec-tok-"));
    const paths = await writeTinyLlama(dir);
    const hf = HfTokenizer.fromFolder(paths.hfDir);
    expect(hf.bosId).toBe(1);
    expect(hf.eosId).toBe(2);
    expect(hf.addBosByDefault).toBe(true);
    for (const t of probeTexts(SPM)) {
      expect(hf.encode(t), JSON.stringify(t)).toEqual(SPM.encode(t));
      expect(hf.decode(hf.encode(t))).toBe(SPM.decode(SPM.encode(t)));
    }
  });
});

describe("token ids equal llama.cpp (llama-2-tiny-random.gguf, real Llama 2 vocabulary)", () => {
  let llama: Llama;
  let model: LlamaModel;
  let spm: Tokenizer;

  beforeAll(async () => {
    const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
    llama = await getLlama({ gpu: false, build: "never", maxThreads: 2, logLevel: LlamaLogLevel.error });
    model = await llama.loadModel({ modelPath: TINY_LLAMA2_GGUF });
    const f = GgufFile.open(TINY_LLAMA2_GGUF);
    spm = tokenizerFromGguf(f);
    f.close();
  });
  afterAll(async () => {
    await llama?.dispose();
  });

  it("GGUF SentencePiece tokenizer", () => {
    // llama.cpp (parse_special = false) reads "<s>" in text as characters; so do we. HF tokenizers would
    // turn it into BOS, as transformers does, so this probe is not in the shared list.
    const literal = "<s> is literal text here </s>";
    expect(spm.encode(literal, { addBos: false })).toEqual(model.tokenize(literal));
    for (const t of probeTexts(spm))
      expect(spm.encode(t, { addBos: false }), JSON.stringify(t)).toEqual(model.tokenize(t));
    expect(spm.bosId).toBe(model.tokens.bos);
    expect(spm.eosId).toBe(model.tokens.eos);
  });

  it("HF tokenizer.json written from the same vocabulary", async () => {
    const dir = mkdtempSync(join(tmpdir(), "llamarec-tok-"));
    const f = GgufFile.open(TINY_LLAMA2_GGUF);
    const vocab = spmVocabFromGguf(f);
    f.close();
    const paths = await writeTinyLlama(dir, { vocab });
    const hf = HfTokenizer.fromFolder(paths.hfDir);
    for (const t of probeTexts(spm))
      expect(hf.encode(t, { addBos: false }), JSON.stringify(t)).toEqual(model.tokenize(t));
  });
});

/** Movie titles from the repo's bundled MovieLens copy: realistic text for BPE training and probing. */
function bundledTitles(): string[] {
  const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
  const csv = gunzipSync(readFileSync(join(root, "data", "ml-latest-small", "movies.csv.gz"))).toString(
    "utf8",
  );
  return csv.split("\n").slice(1, 1800).filter(Boolean);
}

describe("byte-level BPE ids equal llama.cpp and HF tokenizers (trained vocabularies, no shared files)", () => {
  let llama: Llama;
  const lines = bundledTitles();
  const extra = [
    "### Response:\nA",
    "  lead\n\n\ttabs  ",
    "I'M 12345 ÉCOLE's",
    "日本語 😀 x",
    "a\r\nb",
    "(A) x \n (B) y",
  ];

  beforeAll(async () => {
    const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
    llama = await getLlama({ gpu: false, build: "never", maxThreads: 2, logLevel: LlamaLogLevel.error });
  });
  afterAll(async () => {
    await llama?.dispose();
  });

  for (const pre of ["llama-bpe", "qwen2", "gpt-2", "smollm"]) {
    it(`pre-tokenizer ${pre}`, async () => {
      const vocab = trainByteLevelBpe(lines.slice(0, 1200), 300, pre);
      const paths = await writeTinyLlama(mkdtempSync(join(tmpdir(), "llamarec-bpe-")), { vocab });
      const f = GgufFile.open(paths.gguf);
      const bpe = tokenizerFromGguf(f);
      f.close();
      expect(bpe.kind).toBe("bpe");
      const hf = HfTokenizer.fromFolder(paths.hfDir);
      const model = await llama.loadModel({ modelPath: paths.gguf });
      try {
        for (const t of [...lines.slice(1200, 1500), ...extra]) {
          const ref = model.tokenize(t);
          expect(bpe.encode(t, { addBos: false }), JSON.stringify(t)).toEqual(ref);
          expect(hf.encode(t, { addBos: false }), JSON.stringify(t)).toEqual(ref);
          expect(bpe.decode(ref)).toBe(t);
        }
        expect(bpe.encode("x")[0]).toBe(vocab.bosId);
      } finally {
        await model.dispose();
      }
    });
  }

  it("llama-bpe takes a piece that is itself a token whole (ignore_merges)", () => {
    const byteChar = bytesToUnicode();
    const tokens = [...byteChar, "ab", "abc"];
    const types = tokens.map(() => 1);
    const merges = ["a b"]; // no merge builds "abc"
    const make = (pre: string) =>
      new ByteLevelBpeTokenizer({ tokens, types, merges, pre, bosId: null, eosId: null, addBos: false });
    expect(
      make("llama-bpe")
        .encode("abc")
        .map((i) => tokens[i]),
    ).toEqual(["abc"]);
    expect(
      make("gpt-2")
        .encode("abc")
        .map((i) => tokens[i]),
    ).toEqual(["ab", "c"]);
  });
});
