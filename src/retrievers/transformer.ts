/**
 * Pieces shared by the attention retrievers (SASRec, BERT4Rec), as the LlamaRec authors' model/attention.py
 * builds them: multi-head attention over three query/key/value projections (`linear_layers.0…2`), the
 * truncated-normal init and the embeddings' init option. Both run on the packed rows of a batch
 * (positions.ts: packBatch), padding skipped.
 */
import { z } from "zod";
import { Linear } from "../tensor/nn/layers.js";
import { Module, ModuleList } from "../tensor/nn/module.js";
import { multiHeadAttention } from "../tensor/ops/attention.js";
import type { Rng } from "../tensor/rng.js";
import type { Tensor } from "../tensor/tensor.js";
import type { PackedBatch } from "./positions.js";

/**
 * attention(Wq·query, Wk·x, Wv·x) with `heads` heads, keys before keyStart masked, attention-weight dropout
 * drawn from this module's own stream (checkpointed with the others). Subclasses add what follows it.
 */
export class QkvAttention extends Module {
  readonly linearLayers: ModuleList<Linear>;

  constructor(
    d: number,
    readonly heads: number,
    readonly pAttn: number,
    readonly causal: boolean,
    private readonly rng: Rng,
  ) {
    super();
    this.linearLayers = this.registerModule(
      "linear_layers",
      new ModuleList([new Linear(d, d), new Linear(d, d), new Linear(d, d)]),
    );
  }

  protected override ownRng(): Rng {
    return this.rng;
  }

  /** Over the packed rows of a batch (query, x: [N, d]). */
  protected attend(query: Tensor, x: Tensor, pack: PackedBatch): Tensor {
    const [wq, wk, wv] = this.linearLayers.items as [Linear, Linear, Linear];
    return multiHeadAttention(wq.forward(query), wk.forward(x), wv.forward(x), {
      heads: this.heads,
      causal: this.causal,
      offsets: pack.offsets,
      keyStart: pack.keyStart,
      dropout: this.training ? this.pAttn : 0,
      rng: this.rng,
    });
  }
}

/** LRURec's official init (model/lru.py): every weight except layer norms ~ N(0, 0.02²) truncated to ±0.04. */
export function truncatedNormalInit(model: Module, rng: Rng): void {
  for (const [name, p] of model.namedParameters()) {
    if (!name.includes("layer_norm")) rng.fillTruncatedNormal(p.data, 0.02, -0.04, 0.04);
  }
}

/**
 * The item and position embeddings' init, an option of both models: "normal" = N(0, 1), as the authors'
 * SASRec and BERT files leave them (torch's nn.Embedding default; the paper's numbers come from that), or
 * "truncated-normal" = σ 0.02 within ±0.04 like every other weight (as the authors' LRURec initialises all
 * of its weights) — a much faster start (docs/results.md).
 */
export const embeddingInitOption = z
  .enum(["normal", "truncated-normal"])
  .default("normal")
  .describe(
    "item and position embedding init: normal = N(0, 1) as the authors' code, truncated-normal = σ 0.02 like the other weights",
  );

/** After truncatedNormalInit: redraws the embeddings N(0, 1) for "normal" (their padding rows are the caller's). */
export function initEmbeddings(
  kind: z.output<typeof embeddingInitOption>,
  embeddings: readonly Float32Array[],
  rng: Rng,
): void {
  if (kind === "normal") for (const w of embeddings) for (let i = 0; i < w.length; i++) w[i] = rng.normal();
}
