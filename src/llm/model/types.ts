/**
 * The architecture hyper-parameters our Llama-family forward pass needs, in HF naming spirit. Filled from a
 * GGUF header (gguf-load.ts) or an HF config.json; one shape for Llama 1/2/3, Mistral-style GQA and Qwen2.
 */
export type RopeScaling =
  | { readonly type: "linear"; readonly factor: number }
  | {
      readonly type: "llama3";
      readonly factor: number;
      readonly lowFreqFactor: number;
      readonly highFreqFactor: number;
      readonly originalMaxPositionEmbeddings: number;
    };

export interface LlamaConfig {
  /** "llama" or "qwen2" (decides GGUF tensor layout and naming, not the math). */
  readonly architecture: string;
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  readonly ropeScaling: RopeScaling | null;
  /**
   * Per-frequency divisors (headDim/2 values), as llama.cpp's rope_freqs tensor: how GGUF stores Llama 3
   * scaling. Applied on top of ropeScaling (converters write one or the other).
   */
  readonly ropeFreqFactors: Float32Array | null;
  readonly tieWordEmbeddings: boolean;
  /** Biases on q/k/v projections (Qwen2). */
  readonly attentionBias: boolean;
  readonly maxPositionEmbeddings: number;
}

/** Checks the invariants the forward pass relies on; throws naming the offending field. */
export function validateLlamaConfig(c: LlamaConfig, source = "config"): void {
  const positive: Array<keyof LlamaConfig> = [
    "vocabSize",
    "hiddenSize",
    "intermediateSize",
    "numLayers",
    "numHeads",
    "numKvHeads",
    "headDim",
  ];
  for (const k of positive) {
    const v = c[k];
    if (typeof v !== "number" || !Number.isInteger(v) || v <= 0)
      throw new RangeError(`${source}: ${k} must be a positive integer, got ${String(v)}`);
  }
  if (c.numHeads % c.numKvHeads !== 0)
    throw new RangeError(`${source}: numHeads ${c.numHeads} is not a multiple of numKvHeads ${c.numKvHeads}`);
  if (c.headDim % 2 !== 0) throw new RangeError(`${source}: headDim ${c.headDim} must be even for rotary`);
  if (!(c.rmsNormEps > 0)) throw new RangeError(`${source}: rmsNormEps must be > 0, got ${c.rmsNormEps}`);
  if (!(c.ropeTheta > 0)) throw new RangeError(`${source}: ropeTheta must be > 0, got ${c.ropeTheta}`);
  if (c.ropeFreqFactors && c.ropeFreqFactors.length !== c.headDim / 2)
    throw new RangeError(
      `${source}: ropeFreqFactors has ${c.ropeFreqFactors.length} values, expected headDim/2 = ${c.headDim / 2}`,
    );
}
