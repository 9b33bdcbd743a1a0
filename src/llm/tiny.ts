/**
 * Tiny random Llama models, written both as GGUF (for llama.cpp) and as an HF folder (config.json +
 * model.safetensors + tokenizer.json) holding the same weights, plus the `scratch:<size>` configs for
 * training from scratch. The tokenizer is either copied from a GGUF file (e.g. the real Llama 2 vocab) or
 * a small SentencePiece-style vocabulary built here (bytes, characters, letters, common pieces), so tests
 * can run llama.cpp without any file from outside the repo.
 */
import { join } from "node:path";
import { Rng } from "../tensor/rng.js";
import { encodeSafetensors } from "../tensor/safetensors.js";
import { writeFileAtomicSync, writeJsonAtomic } from "../util/atomic.js";
import { InputError } from "../util/errors.js";
import { hfToGgufName, type LlamaConfig, permuteRows, validateConfig } from "./config.js";
import type { GgufFile } from "./gguf/reader.js";
import { GgmlType, type GgufValue, GgufValueType } from "./gguf/types.js";
import { type GgufTensorToWrite, gguf, writeGguf } from "./gguf/writer.js";
import { bytesToUnicode, LLAMA3_PRE, preTokenize, preTokenizerRegexes } from "./tokenizer/bpe.js";
import { TokenType } from "./tokenizer/types.js";

/** Architecture sizes of the `scratch:<size>` presets (vocabulary comes from the tokenizer). */
export const SCRATCH_SIZES = {
  tiny: { hiddenSize: 64, intermediateSize: 176, numLayers: 2, numHeads: 4, numKvHeads: 2 },
  small: { hiddenSize: 192, intermediateSize: 512, numLayers: 6, numHeads: 6, numKvHeads: 2 },
} as const;

export type ScratchSize = keyof typeof SCRATCH_SIZES;

/** LlamaConfig for "scratch:tiny" / "scratch:small" (or a bare size name) with the given vocabulary. */
export function scratchConfig(
  spec: string,
  vocab: { size: number; bosId: number | null; eosId: number | null },
): LlamaConfig {
  const size = spec.replace(/^scratch:/, "");
  const preset = SCRATCH_SIZES[size as ScratchSize];
  if (!preset) {
    throw new InputError(
      `unknown scratch model "${spec}" (known: ${Object.keys(SCRATCH_SIZES)
        .map((s) => `scratch:${s}`)
        .join(", ")})`,
    );
  }
  const config: LlamaConfig = {
    architecture: "llama",
    vocabSize: vocab.size,
    ...preset,
    headDim: preset.hiddenSize / preset.numHeads,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    ropeScaling: null,
    maxPositionEmbeddings: 2048,
    tieWordEmbeddings: false,
    attentionBias: false,
    outputBias: false,
    bosTokenId: vocab.bosId,
    eosTokenId: vocab.eosId,
  };
  validateConfig(config, spec);
  return config;
}

/** SentencePiece vocabulary as stored in GGUF. */
export interface SpmVocabData {
  tokens: string[];
  scores: number[];
  types: number[];
  bosId: number;
  eosId: number;
  unkId: number;
}

// Pieces seen in ranking prompts; every prefix of a piece is added too, so BPE merges can reach it.
const COMMON_WORDS = [
  "▁the",
  "▁of",
  "▁and",
  "▁a",
  "▁in",
  "▁to",
  "▁with",
  "▁from",
  "▁an",
  "▁item",
  "▁index",
  "▁letter",
  "▁user",
  "▁history",
  "▁candidate",
  "▁pool",
  "▁order",
  "▁recommend",
  "▁chronological",
  "▁Given",
  "▁User",
  "▁Candidate",
  "▁Instruction",
  "▁Input",
  "▁Response",
  "###",
  "▁Story",
  "▁Movie",
  "▁Star",
  "▁Wars",
  "▁Toy",
];

/** A small self-contained SentencePiece vocabulary: <unk> <s> </s>, 256 byte tokens, characters, pieces. */
export function builtinSpmVocab(): SpmVocabData {
  const tokens = ["<unk>", "<s>", "</s>"];
  const types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(TokenType.BYTE);
  }
  const pieces: string[] = [];
  const seen = new Set<string>();
  const add = (p: string) => {
    if (!seen.has(p)) {
      seen.add(p);
      pieces.push(p);
    }
  };
  add("▁");
  for (let c = 33; c < 127; c++) add(String.fromCharCode(c));
  for (let c = 33; c < 127; c++) add(`▁${String.fromCharCode(c)}`);
  for (const word of COMMON_WORDS) {
    const chars = Array.from(word);
    for (let n = 2; n <= chars.length; n++) add(chars.slice(0, n).join(""));
  }
  const scores = tokens.map(() => 0);
  // Longer pieces score higher, so whole words win over partial merges.
  pieces.forEach((p, i) => {
    tokens.push(p);
    types.push(TokenType.NORMAL);
    scores.push(Array.from(p).length * 1000 - i);
  });
  return { tokens, scores, types, bosId: 1, eosId: 2, unkId: 0 };
}

/** The tokenizer.ggml.* metadata of a GGUF file (for copying a real vocabulary into a tiny model). */
export function spmVocabFromGguf(file: GgufFile): SpmVocabData {
  if (file.get("tokenizer.ggml.model") !== "llama") {
    throw new InputError(
      `${file.path}: only SentencePiece ("llama") tokenizers can be copied into a tiny model`,
    );
  }
  const num = (k: string, d: number) => {
    const v = file.get(k);
    return typeof v === "number" ? v : d;
  };
  const tokens = file.get("tokenizer.ggml.tokens") as string[];
  return {
    tokens,
    scores: (file.get("tokenizer.ggml.scores") as number[] | undefined) ?? tokens.map(() => 0),
    types: (file.get("tokenizer.ggml.token_type") as number[] | undefined) ?? tokens.map(() => 1),
    bosId: num("tokenizer.ggml.bos_token_id", 1),
    eosId: num("tokenizer.ggml.eos_token_id", 2),
    unkId: num("tokenizer.ggml.unknown_token_id", 0),
  };
}

/** Byte-level BPE vocabulary (GPT-2 / Llama 3 style) as stored in GGUF with tokenizer.ggml.model = "gpt2". */
export interface BpeVocabData {
  kind: "bpe";
  tokens: string[];
  types: number[];
  merges: string[];
  /** llama.cpp pre-tokenizer name: "llama-bpe", "qwen2", "smollm", "gpt-2". */
  pre: string;
  bosId: number;
  eosId: number;
}

export type TinyVocab = SpmVocabData | BpeVocabData;

function isBpe(v: TinyVocab): v is BpeVocabData {
  return (v as BpeVocabData).kind === "bpe";
}

/**
 * Learns `numMerges` byte-level BPE merges from `corpus` (most frequent adjacent pair first, ties broken
 * by the pair's text), after pre-tokenizing with the `pre` regexes. Tokens: 256 bytes, merges, then
 * <|begin_of_text|> and <|end_of_text|> as control tokens. Small and deterministic: for tests.
 */
export function trainByteLevelBpe(
  corpus: readonly string[],
  numMerges: number,
  pre = "llama-bpe",
): BpeVocabData {
  const byteChar = bytesToUnicode();
  const regexes = preTokenizerRegexes(pre);
  const wordCounts = new Map<string, number>();
  for (const text of corpus) {
    for (const piece of preTokenize(text, regexes)) {
      const mapped = Array.from(Buffer.from(piece, "utf8"), (b) => byteChar[b]!).join("\u0000");
      wordCounts.set(mapped, (wordCounts.get(mapped) ?? 0) + 1);
    }
  }
  let words = [...wordCounts].map(([w, n]) => ({ parts: w.split("\u0000"), n }));
  const tokens = [...byteChar];
  const merges: string[] = [];
  for (let m = 0; m < numMerges; m++) {
    const pairs = new Map<string, number>();
    for (const w of words) {
      for (let i = 0; i + 1 < w.parts.length; i++) {
        const key = `${w.parts[i]} ${w.parts[i + 1]}`;
        pairs.set(key, (pairs.get(key) ?? 0) + w.n);
      }
    }
    let best: string | null = null;
    let bestCount = 0;
    for (const [k, n] of pairs) {
      if (n > bestCount || (n === bestCount && best !== null && k < best)) {
        best = k;
        bestCount = n;
      }
    }
    if (best === null || bestCount < 2) break;
    const [a, b] = best.split(" ") as [string, string];
    merges.push(best);
    tokens.push(a + b);
    words = words.map((w) => {
      const parts: string[] = [];
      for (let i = 0; i < w.parts.length; i++) {
        if (i + 1 < w.parts.length && w.parts[i] === a && w.parts[i + 1] === b) {
          parts.push(a + b);
          i++;
        } else {
          parts.push(w.parts[i]!);
        }
      }
      return { parts, n: w.n };
    });
  }
  const types = tokens.map(() => TokenType.NORMAL as number);
  tokens.push("<|begin_of_text|>", "<|end_of_text|>");
  types.push(TokenType.CONTROL, TokenType.CONTROL);
  return { kind: "bpe", tokens, types, merges, pre, bosId: tokens.length - 2, eosId: tokens.length - 1 };
}

/** Weights in HF names and PyTorch shapes. */
export type HfWeights = Map<string, { shape: number[]; data: Float32Array }>;

/** Random weights: N(0, std²) matrices, unit norms — the shapes of LlamaForCausalLM. */
export function randomLlamaWeights(config: LlamaConfig, seed = 0, std = 0.02): HfWeights {
  const rng = new Rng(seed);
  const w: HfWeights = new Map();
  const normal = (shape: number[]) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = rng.normal() * std;
    return { shape, data };
  };
  const ones = (n: number) => ({ shape: [n], data: new Float32Array(n).fill(1) });
  const d = config.hiddenSize;
  const q = config.numHeads * config.headDim;
  const kv = config.numKvHeads * config.headDim;
  w.set("model.embed_tokens.weight", normal([config.vocabSize, d]));
  for (let l = 0; l < config.numLayers; l++) {
    const p = `model.layers.${l}`;
    w.set(`${p}.input_layernorm.weight`, ones(d));
    w.set(`${p}.self_attn.q_proj.weight`, normal([q, d]));
    w.set(`${p}.self_attn.k_proj.weight`, normal([kv, d]));
    w.set(`${p}.self_attn.v_proj.weight`, normal([kv, d]));
    w.set(`${p}.self_attn.o_proj.weight`, normal([d, q]));
    if (config.attentionBias) {
      w.set(`${p}.self_attn.q_proj.bias`, normal([q]));
      w.set(`${p}.self_attn.k_proj.bias`, normal([kv]));
      w.set(`${p}.self_attn.v_proj.bias`, normal([kv]));
    }
    if (config.outputBias) w.set(`${p}.self_attn.o_proj.bias`, normal([d]));
    w.set(`${p}.post_attention_layernorm.weight`, ones(d));
    w.set(`${p}.mlp.gate_proj.weight`, normal([config.intermediateSize, d]));
    w.set(`${p}.mlp.up_proj.weight`, normal([config.intermediateSize, d]));
    w.set(`${p}.mlp.down_proj.weight`, normal([d, config.intermediateSize]));
  }
  w.set("model.norm.weight", ones(d));
  if (!config.tieWordEmbeddings) w.set("lm_head.weight", normal([config.vocabSize, d]));
  return w;
}

function tokenizerMetadata(vocab: TinyVocab): [string, GgufValue][] {
  if (isBpe(vocab)) {
    return [
      ["tokenizer.ggml.model", gguf.str("gpt2")],
      ["tokenizer.ggml.pre", gguf.str(vocab.pre)],
      ["tokenizer.ggml.tokens", gguf.arr(GgufValueType.STRING, vocab.tokens)],
      ["tokenizer.ggml.token_type", gguf.arr(GgufValueType.INT32, vocab.types)],
      ["tokenizer.ggml.merges", gguf.arr(GgufValueType.STRING, vocab.merges)],
      ["tokenizer.ggml.bos_token_id", gguf.u32(vocab.bosId)],
      ["tokenizer.ggml.eos_token_id", gguf.u32(vocab.eosId)],
      ["tokenizer.ggml.add_bos_token", gguf.bool(true)],
    ];
  }
  return [
    ["tokenizer.ggml.model", gguf.str("llama")],
    ["tokenizer.ggml.tokens", gguf.arr(GgufValueType.STRING, vocab.tokens)],
    ["tokenizer.ggml.scores", gguf.arr(GgufValueType.FLOAT32, vocab.scores)],
    ["tokenizer.ggml.token_type", gguf.arr(GgufValueType.INT32, vocab.types)],
    ["tokenizer.ggml.bos_token_id", gguf.u32(vocab.bosId)],
    ["tokenizer.ggml.eos_token_id", gguf.u32(vocab.eosId)],
    ["tokenizer.ggml.unknown_token_id", gguf.u32(vocab.unkId)],
    ["tokenizer.ggml.add_bos_token", gguf.bool(true)],
    ["tokenizer.ggml.add_eos_token", gguf.bool(false)],
  ];
}

/**
 * Writes a llama-architecture GGUF (F32 or F16 matrices; norms always F32). Q/K rows are permuted the way
 * convert_hf_to_gguf.py does, so llama.cpp computes the same function as the HF weights.
 */
export function writeLlamaGguf(
  path: string,
  config: LlamaConfig,
  weights: HfWeights,
  vocab: TinyVocab,
  options: { matrixType?: GgmlType; name?: string } = {},
): void {
  // Mistral is stored as llama in GGUF; qwen2 keeps its own name, NeoX RoPE and unpermuted Q/K.
  const a = config.architecture === "qwen2" ? "qwen2" : "llama";
  const meta = new Map<string, GgufValue>([
    ["general.architecture", gguf.str(a)],
    ["general.name", gguf.str(options.name ?? "llamarec-tiny")],
    ["general.file_type", gguf.u32(options.matrixType === GgmlType.F16 ? 1 : 0)],
    [`${a}.vocab_size`, gguf.u32(config.vocabSize)],
    [`${a}.context_length`, gguf.u32(config.maxPositionEmbeddings)],
    [`${a}.embedding_length`, gguf.u32(config.hiddenSize)],
    [`${a}.block_count`, gguf.u32(config.numLayers)],
    [`${a}.feed_forward_length`, gguf.u32(config.intermediateSize)],
    [`${a}.rope.dimension_count`, gguf.u32(config.headDim)],
    [`${a}.rope.freq_base`, gguf.f32(config.ropeTheta)],
    [`${a}.attention.head_count`, gguf.u32(config.numHeads)],
    [`${a}.attention.head_count_kv`, gguf.u32(config.numKvHeads)],
    [`${a}.attention.layer_norm_rms_epsilon`, gguf.f32(config.rmsNormEps)],
    ...tokenizerMetadata(vocab),
  ]);
  const tensors: GgufTensorToWrite[] = [];
  for (const [name, t] of weights) {
    const ggufName = hfToGgufName(name);
    if (!ggufName) throw new Error(`no GGUF name for weight ${name}`);
    let data = t.data;
    const qk = a === "llama" ? /\.self_attn\.([qk])_proj\.(weight|bias)$/.exec(name) : null;
    if (qk) {
      const heads = qk[1] === "q" ? config.numHeads : config.numKvHeads;
      data = permuteRows(data, heads, qk[2] === "weight" ? t.shape[1]! : 1);
    }
    const isMatrix = t.shape.length === 2;
    tensors.push({
      name: ggufName,
      dims: [...t.shape].reverse(),
      type: isMatrix ? (options.matrixType ?? GgmlType.F32) : GgmlType.F32,
      data,
    });
  }
  writeGguf(path, meta, tensors);
}

/**
 * HF tokenizer.json for a SentencePiece vocabulary (the "legacy" Llama layout: Prepend ▁ + Replace
 * normalizer, BPE with byte fallback). Merges are derived from the piece scores, as transformers'
 * LlamaConverter does: every split of a piece into two in-vocabulary pieces, higher-scoring pieces first.
 */
export function spmTokenizerJson(vocab: SpmVocabData): Record<string, unknown> {
  const ids = new Map<string, number>();
  vocab.tokens.forEach((t, i) => {
    if (!ids.has(t)) ids.set(t, i);
  });
  const merges: { pair: string; score: number; id: number }[] = [];
  vocab.tokens.forEach((t, id) => {
    if (vocab.types[id] !== TokenType.NORMAL && vocab.types[id] !== TokenType.USER_DEFINED) return;
    const chars = Array.from(t);
    for (let k = 1; k < chars.length; k++) {
      const left = chars.slice(0, k).join("");
      const right = chars.slice(k).join("");
      if (ids.has(left) && ids.has(right))
        merges.push({ pair: `${left} ${right}`, score: vocab.scores[id]!, id });
    }
  });
  merges.sort((x, y) => y.score - x.score || x.id - y.id);
  const special = (id: number) => addedToken(vocab.tokens, id);
  const bos = vocab.tokens[vocab.bosId]!;
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [special(vocab.unkId), special(vocab.bosId), special(vocab.eosId)],
    normalizer: {
      type: "Sequence",
      normalizers: [
        { type: "Prepend", prepend: "▁" },
        { type: "Replace", pattern: { String: " " }, content: "▁" },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [
        { SpecialToken: { id: bos, type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: bos, type_id: 1 } },
        { Sequence: { id: "B", type_id: 1 } },
      ],
      special_tokens: { [bos]: { id: bos, ids: [vocab.bosId], tokens: [bos] } },
    },
    decoder: {
      type: "Sequence",
      decoders: [
        { type: "Replace", pattern: { String: "▁" }, content: " " },
        { type: "ByteFallback" },
        { type: "Fuse" },
        { type: "Strip", content: " ", start: 1, stop: 0 },
      ],
    },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: vocab.tokens[vocab.unkId],
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      vocab: Object.fromEntries(vocab.tokens.map((t, i) => [t, i])),
      merges: merges.map((m) => m.pair),
    },
  };
}

/** HF tokenizer.json for a byte-level BPE vocabulary, laid out like Llama 3's. */
export function bpeTokenizerJson(vocab: BpeVocabData): Record<string, unknown> {
  const splits = preTokenizerRegexes(vocab.pre).map((re) => ({
    type: "Split",
    pattern: { Regex: re.source },
    behavior: "Isolated",
    invert: false,
  }));
  const special = (id: number) => addedToken(vocab.tokens, id);
  const bos = vocab.tokens[vocab.bosId]!;
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [special(vocab.bosId), special(vocab.eosId)],
    normalizer: null,
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [
        ...splits,
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [
        { SpecialToken: { id: bos, type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: bos, type_id: 1 } },
        { Sequence: { id: "B", type_id: 1 } },
      ],
      special_tokens: { [bos]: { id: bos, ids: [vocab.bosId], tokens: [bos] } },
    },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: LLAMA3_PRE.has(vocab.pre),
      vocab: Object.fromEntries(vocab.tokens.map((t, i) => [t, i])),
      merges: vocab.merges,
    },
  };
}

/** Writes an HF folder: config.json, model.safetensors (F32), tokenizer.json, tokenizer_config.json. */
export async function writeLlamaHfFolder(
  dir: string,
  config: LlamaConfig,
  weights: HfWeights,
  vocab: TinyVocab,
): Promise<void> {
  await writeJsonAtomic(join(dir, "config.json"), {
    architectures: [config.architecture === "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM"],
    model_type: config.architecture,
    vocab_size: config.vocabSize,
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.numLayers,
    num_attention_heads: config.numHeads,
    num_key_value_heads: config.numKvHeads,
    head_dim: config.headDim,
    rms_norm_eps: config.rmsNormEps,
    rope_theta: config.ropeTheta,
    rope_scaling: null,
    max_position_embeddings: config.maxPositionEmbeddings,
    tie_word_embeddings: config.tieWordEmbeddings,
    attention_bias: config.attentionBias,
    hidden_act: "silu",
    bos_token_id: config.bosTokenId,
    eos_token_id: config.eosTokenId,
    torch_dtype: "float32",
  });
  writeFileAtomicSync(join(dir, "model.safetensors"), encodeSafetensors(weights, { format: "pt" }));
  await writeJsonAtomic(
    join(dir, "tokenizer.json"),
    isBpe(vocab) ? bpeTokenizerJson(vocab) : spmTokenizerJson(vocab),
  );
  await writeJsonAtomic(
    join(dir, "tokenizer_config.json"),
    isBpe(vocab)
      ? {
          tokenizer_class: "PreTrainedTokenizerFast",
          bos_token: vocab.tokens[vocab.bosId],
          eos_token: vocab.tokens[vocab.eosId],
        }
      : {
          tokenizer_class: "LlamaTokenizer",
          add_bos_token: true,
          add_eos_token: false,
          bos_token: vocab.tokens[vocab.bosId],
          eos_token: vocab.tokens[vocab.eosId],
          unk_token: vocab.tokens[vocab.unkId],
          legacy: true,
        },
  );
}

export interface TinyModelPaths {
  gguf: string;
  hfDir: string;
  config: LlamaConfig;
}

/**
 * One call for tests and demos: a scratch-size random Llama written to `<dir>/model.gguf` and `<dir>/hf/`
 * with identical weights. `vocab` defaults to the built-in SentencePiece vocabulary.
 */
export async function writeTinyLlama(
  dir: string,
  options: {
    size?: string;
    seed?: number;
    vocab?: TinyVocab;
    std?: number;
    /** Variations of the scratch config, e.g. { architecture: "qwen2", attentionBias: true }. */
    overrides?: Partial<
      Pick<LlamaConfig, "architecture" | "attentionBias" | "outputBias" | "tieWordEmbeddings" | "ropeTheta">
    >;
  } = {},
): Promise<TinyModelPaths> {
  const vocab = options.vocab ?? builtinSpmVocab();
  const base = {
    ...scratchConfig(options.size ?? "scratch:tiny", {
      size: vocab.tokens.length,
      bosId: vocab.bosId,
      eosId: vocab.eosId,
    }),
    ...options.overrides,
  };
  // Keep the bias flags expressible in config.json: qwen2 always has q/k/v biases and no o_proj bias,
  // Llama's attention_bias covers all four projections.
  const config: LlamaConfig =
    base.architecture === "qwen2"
      ? { ...base, attentionBias: true, outputBias: false }
      : { ...base, outputBias: base.attentionBias };
  const weights = randomLlamaWeights(config, options.seed ?? 0, options.std);
  const gguf = join(dir, "model.gguf");
  const hfDir = join(dir, "hf");
  writeLlamaGguf(gguf, config, weights, vocab);
  await writeLlamaHfFolder(hfDir, config, weights, vocab);
  return { gguf, hfDir, config };
}

/** A tokenizer.json `added_tokens` entry for a special token. */
function addedToken(tokens: readonly string[], id: number): Record<string, unknown> {
  return {
    id,
    content: tokens[id],
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  };
}
