/**
 * The model description every loader produces and the forward pass consumes.
 *
 * Weights are always exposed the Hugging Face way, whatever the file format:
 * - names: `model.embed_tokens.weight`, `model.layers.N.self_attn.{q,k,v,o}_proj.{weight,bias}`,
 *   `model.layers.N.mlp.{gate,up,down}_proj.weight`, `model.layers.N.{input,post_attention}_layernorm.weight`,
 *   `model.norm.weight`, `lm_head.weight` (absent when tieWordEmbeddings).
 * - layout: row-major PyTorch shapes, a Linear weight is [out, in] (y = x·Wᵀ).
 * - RoPE: "rotate_half" pairing — within each head, dimension i rotates with i + headDim/2, with
 *   inverse frequencies from ropeInverseFrequencies(). This is HF's convention for llama, mistral and qwen2.
 *
 * GGUF ⇄ HF names (see GGUF_TO_HF): token_embd ⇄ model.embed_tokens, blk.N.attn_norm ⇄ input_layernorm,
 * blk.N.attn_{q,k,v} ⇄ self_attn.{q,k,v}_proj, blk.N.attn_output ⇄ self_attn.o_proj, blk.N.ffn_norm ⇄
 * post_attention_layernorm, blk.N.ffn_{gate,up,down} ⇄ mlp.{gate,up,down}_proj, output_norm ⇄ model.norm,
 * output ⇄ lm_head. GGUF dims are reversed ([in, out]) but the bytes are the same row-major [out, in].
 *
 * Q/K permutation: for architecture "llama" (also Mistral, converted as llama), convert_hf_to_gguf.py
 * permutes the rows of q_proj/k_proj (weights and biases) so that llama.cpp's interleaved RoPE (pairs
 * 2i, 2i+1) computes what HF's rotate_half computes: per head, GGUF row 2i+j = HF row j·headDim/2 + i.
 * The GGUF loader undoes this (unpermuteRows), so both loaders give identical tensors. qwen2 uses NeoX
 * RoPE in llama.cpp and is stored unpermuted.
 */

export type LlamaArchitecture = "llama" | "mistral" | "qwen2";

export interface RopeScaling {
  type: "linear" | "llama3" | "dynamic" | "yarn";
  factor: number;
  /** llama3 only. */
  lowFreqFactor?: number;
  highFreqFactor?: number;
  originalMaxPositionEmbeddings?: number;
}

export interface LlamaConfig {
  architecture: LlamaArchitecture;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** q/k/v projections have biases (qwen2, or llama with attention_bias). */
  attentionBias: boolean;
  /** o_proj has a bias (llama with attention_bias). */
  outputBias: boolean;
  bosTokenId: number | null;
  eosTokenId: number | null;
  /**
   * RoPE divisors stored in a GGUF `rope_freqs.weight` (Llama 3.1 files carry these instead of
   * rope_scaling); absent for HF folders. Same values as WeightSource.ropeFreqFactors().
   */
  ropeFreqFactors?: Float32Array | null;
}

export type WeightDType = "F32" | "F16" | "BF16" | "Q8_0" | "Q4_0" | "Q4_K" | "Q6_K" | string;

/** Read access to a model's weights, HF names and layout (see the module comment). */
export interface WeightSource {
  readonly config: LlamaConfig;
  /** Where the weights come from, for messages. */
  readonly path: string;
  names(): string[];
  has(name: string): boolean;
  /** PyTorch shape, e.g. [out, in]. */
  shape(name: string): number[];
  /** Storage type on disk. */
  dtype(name: string): WeightDType;
  /** The tensor decoded to float32; read lazily from disk on each call. */
  get(name: string): Float32Array;
  /**
   * Per-frequency divisors (length headDim/2) when the file stores them instead of rope_scaling (GGUF
   * `rope_freqs.weight`, written for Llama 3.1), else null. Pass to ropeInverseFrequencies.
   */
  ropeFreqFactors(): Float32Array | null;
  close(): void;
}

/** HF name of each per-layer GGUF tensor stem. */
const LAYER_MAP: Record<string, string> = {
  attn_norm: "input_layernorm",
  attn_q: "self_attn.q_proj",
  attn_k: "self_attn.k_proj",
  attn_v: "self_attn.v_proj",
  attn_output: "self_attn.o_proj",
  ffn_norm: "post_attention_layernorm",
  ffn_gate: "mlp.gate_proj",
  ffn_up: "mlp.up_proj",
  ffn_down: "mlp.down_proj",
};
const GLOBAL_MAP: Record<string, string> = {
  token_embd: "model.embed_tokens",
  output_norm: "model.norm",
  output: "lm_head",
};

/** GGUF tensor name → HF name, or null for tensors without an HF counterpart (e.g. rope_freqs). */
export function ggufToHfName(name: string): string | null {
  const m = /^blk\.(\d+)\.(\w+)\.(weight|bias)$/.exec(name);
  if (m) {
    const hf = LAYER_MAP[m[2]!];
    return hf ? `model.layers.${m[1]}.${hf}.${m[3]}` : null;
  }
  const g = /^(\w+)\.(weight|bias)$/.exec(name);
  if (g && GLOBAL_MAP[g[1]!]) return `${GLOBAL_MAP[g[1]!]}.${g[2]}`;
  return null;
}

/** HF name → GGUF tensor name, or null. */
export function hfToGgufName(name: string): string | null {
  const m = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(name);
  if (m) {
    const stem = Object.keys(LAYER_MAP).find((k) => LAYER_MAP[k] === m[2]);
    return stem ? `blk.${m[1]}.${stem}.${m[3]}` : null;
  }
  const g = /^(.+)\.(weight|bias)$/.exec(name);
  if (g) {
    const stem = Object.keys(GLOBAL_MAP).find((k) => GLOBAL_MAP[k] === g[1]);
    return stem ? `${stem}.${g[2]}` : null;
  }
  return null;
}

/**
 * convert_hf_to_gguf's permute for llama Q/K: rows of each head reordered from rotate_half layout
 * (i, i + d/2) to interleaved (2i, 2i+1). `rows` = heads·headDim, each row `cols` long (cols = 1 for biases).
 */
export function permuteRows(data: Float32Array, heads: number, cols: number): Float32Array {
  return reorderRows(data, heads, cols, false);
}

/** Inverse of permuteRows: GGUF interleaved rows back to HF rotate_half rows. */
export function unpermuteRows(data: Float32Array, heads: number, cols: number): Float32Array {
  return reorderRows(data, heads, cols, true);
}

function reorderRows(data: Float32Array, heads: number, cols: number, inverse: boolean): Float32Array {
  const rows = data.length / cols;
  const headDim = rows / heads;
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) {
    throw new Error(`cannot permute ${rows} rows into ${heads} heads of even size`);
  }
  const half = headDim / 2;
  const out = new Float32Array(data.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const hfRow = h * headDim + j * half + i;
        const ggufRow = h * headDim + 2 * i + j;
        const [from, to] = inverse ? [ggufRow, hfRow] : [hfRow, ggufRow];
        out.set(data.subarray(from * cols, (from + 1) * cols), to * cols);
      }
    }
  }
  return out;
}

/**
 * RoPE inverse frequencies θ_i = base^(-2i/d), i < d/2, divided by GGUF rope_freqs factors when given, else
 * with rope_scaling applied as HF does
 * ("linear": divided by factor; "llama3": the Llama 3.1 wavelength-dependent blend). "dynamic" and
 * "yarn" are not implemented and throw.
 */
export function ropeInverseFrequencies(
  config: LlamaConfig,
  freqFactors: Float32Array | null = null,
): Float32Array {
  const d = config.headDim;
  const inv = new Float32Array(d / 2);
  for (let i = 0; i < d / 2; i++) inv[i] = 1 / config.ropeTheta ** ((2 * i) / d);
  // llama.cpp divides each frequency by its factor; the factors already encode the llama3 scaling.
  if (freqFactors) return inv.map((f, i) => f / freqFactors[i]!);
  const s = config.ropeScaling;
  if (!s) return inv;
  if (s.type === "linear") return inv.map((f) => f / s.factor);
  if (s.type === "llama3") {
    const low = s.lowFreqFactor ?? 1;
    const high = s.highFreqFactor ?? 4;
    const oldCtx = s.originalMaxPositionEmbeddings ?? 8192;
    const lowWavelen = oldCtx / low;
    const highWavelen = oldCtx / high;
    return inv.map((f) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < highWavelen) return f;
      if (wavelen > lowWavelen) return f / s.factor;
      const smooth = (oldCtx / wavelen - low) / (high - low);
      return (1 - smooth) * (f / s.factor) + smooth * f;
    });
  }
  throw new Error(`rope_scaling type "${s.type}" is not supported (supported: linear, llama3)`);
}

/** Checks the shape invariants the forward pass relies on; throws naming the bad field. */
export function validateConfig(config: LlamaConfig, source: string): void {
  const bad = (field: string, why: string) => {
    throw new Error(`${source}: ${field} ${why}`);
  };
  for (const f of [
    "vocabSize",
    "hiddenSize",
    "intermediateSize",
    "numLayers",
    "numHeads",
    "numKvHeads",
    "headDim",
  ] as const) {
    if (!Number.isInteger(config[f]) || config[f] <= 0)
      bad(f, `must be a positive integer, got ${config[f]}`);
  }
  if (config.numHeads % config.numKvHeads !== 0)
    bad("numKvHeads", `must divide numHeads (${config.numHeads})`);
  if (config.headDim % 2 !== 0) bad("headDim", "must be even for RoPE");
  if (!(config.rmsNormEps > 0)) bad("rmsNormEps", "must be positive");
  if (!(config.ropeTheta > 0)) bad("ropeTheta", "must be positive");
}
