/** The `scratch:<size>` presets: a randomly initialised Llama trained fully from scratch as the ranker. */
import { InputError } from "../../util/errors.js";
import { type LlamaConfig, validateConfig } from "../config.js";

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
