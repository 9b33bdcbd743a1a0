/**
 * How a Llama-family model is laid out in GGUF: HF ↔ GGUF tensor names, and the Q/K row permutation
 * llama.cpp's convert_hf_to_gguf.py applies to "llama" files (its rotary rotates adjacent pairs, HF's
 * rotates halves). Qwen2 files use the half layout (NEOX rope) and are not permuted.
 */

const LAYER_NAMES: ReadonlyArray<[string, string]> = [
  ["input_layernorm.weight", "attn_norm.weight"],
  ["self_attn.q_proj.weight", "attn_q.weight"],
  ["self_attn.q_proj.bias", "attn_q.bias"],
  ["self_attn.k_proj.weight", "attn_k.weight"],
  ["self_attn.k_proj.bias", "attn_k.bias"],
  ["self_attn.v_proj.weight", "attn_v.weight"],
  ["self_attn.v_proj.bias", "attn_v.bias"],
  ["self_attn.o_proj.weight", "attn_output.weight"],
  ["post_attention_layernorm.weight", "ffn_norm.weight"],
  ["mlp.gate_proj.weight", "ffn_gate.weight"],
  ["mlp.up_proj.weight", "ffn_up.weight"],
  ["mlp.down_proj.weight", "ffn_down.weight"],
];

const GLOBAL_NAMES: ReadonlyArray<[string, string]> = [
  ["model.embed_tokens.weight", "token_embd.weight"],
  ["model.norm.weight", "output_norm.weight"],
  ["lm_head.weight", "output.weight"],
];

/** GGUF tensor name of an HF parameter name, or null if it has none. */
export function ggufTensorName(hfName: string): string | null {
  for (const [hf, g] of GLOBAL_NAMES) if (hf === hfName) return g;
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hfName);
  if (!m) return null;
  for (const [hf, g] of LAYER_NAMES) if (hf === m[2]) return `blk.${m[1]}.${g}`;
  return null;
}

/** GGUF name of a projection's module path ("model.layers.3.self_attn.q_proj" → "blk.3.attn_q.weight"). */
export function ggufWeightNameOfModule(modulePath: string): string | null {
  return ggufTensorName(`${modulePath}.weight`);
}

/** Architectures whose GGUF Q/K rows are permuted (llama.cpp LLAMA_ROPE_TYPE_NORM). */
export function ggufPermutesQK(architecture: string): boolean {
  if (architecture === "llama") return true;
  if (architecture === "qwen2") return false;
  throw new RangeError(`unsupported architecture "${architecture}" (supported: llama, qwen2)`);
}

/**
 * Reorders the rows of a [heads·headDim, cols] matrix (or a bias, cols = 1) between the HF half layout and
 * the GGUF interleaved one: HF row h·d + s·d/2 + i ↔ GGUF row h·d + 2i + s.
 */
export function permuteQKRows(
  data: Float32Array,
  heads: number,
  cols: number,
  direction: "hf-to-gguf" | "gguf-to-hf",
): Float32Array {
  const rows = data.length / cols;
  if (!Number.isInteger(rows) || rows % heads !== 0 || (rows / heads) % 2 !== 0)
    throw new RangeError(`cannot permute ${rows}×${cols} Q/K rows over ${heads} heads`);
  const d = rows / heads;
  const half = d / 2;
  const out = new Float32Array(data.length);
  for (let h = 0; h < heads; h++)
    for (let s = 0; s < 2; s++)
      for (let i = 0; i < half; i++) {
        const hfRow = h * d + s * half + i;
        const ggRow = h * d + 2 * i + s;
        const [from, to] = direction === "hf-to-gguf" ? [hfRow, ggRow] : [ggRow, hfRow];
        out.set(data.subarray(from * cols, (from + 1) * cols), to * cols);
      }
  return out;
}
