/**
 * SASRec (Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018) as the LlamaRec authors'
 * code base implements it (Yue et al., model/sasrec.py + model/attention.py of
 * github.com/Yueeeeeeee/RecSys-Extraction-Attack, whose baselines the LlamaRec/LRURec papers report):
 *   item embedding (padding row 0) + learned positions (1…n from the first item, 0 on padding) → dropout →
 *   blocks of [q = LN(x); a = causal multi-head attention(Wq·q, Wk·x, Wv·x) with attention dropout, no output
 *   projection; x = LN(a + q); x = LN(dropout(W₂·dropout(ReLU(W₁·x))) + x)] → scores = x·Eᵀ (no bias).
 * 2 blocks, 2 heads, d = 64, feed-forward 4d; trained, like every retriever here, with cross-entropy over all
 * items at every labelled position (the shared trainer; the authors' SASRec trainer uses one sampled negative
 * with BCE — the LlamaRec paper trains its baselines with cross-entropy over all items).
 *
 * Every layer runs on the packed rows of a batch (positions.ts, packBatch): padding positions that carry
 * no label are never computed (they cannot influence a labelled position: padding keys are masked).
 *
 * Init as theirs: truncated normal (σ 0.02, ±0.04) on every weight except layer norms and the embeddings;
 * item and position embeddings N(0, 1) (torch's default, which their file leaves in place), the padding row
 * zero and never updated (padding_idx). That start is slow — logits of std ~8, a loss of ~28 — and within
 * the official schedule (at most 500 epochs) it ends well below a model whose embeddings start at σ 0.02:
 * `embeddingInit: "truncated-normal"` (as the authors' LRURec initialises everything) reaches test R@10
 * 0.128–0.138 on ml-latest-small where the paper's SASRec has 0.099 (docs/results.md). The default follows
 * the authors' code because the paper's numbers come from it; the option is the better model.
 *
 * Where this differs from the authors' code, and why:
 * - Layer norm is the standard one (biased variance inside the square root, ε 1e-5); theirs divides by the
 *   unbiased std + 1e-6 — a ~0.8% rescaling the learned gain absorbs.
 * - A query inside the left padding attends to nothing and outputs 0: in their code every key of such a
 *   query is masked with the same −1e9, so it averages all positions, future items included. That only
 *   touches the label "first item from nothing" (the position just before a history), which here sees no
 *   item at all.
 * - The original paper's SASRec (pre-LN residuals, shared item embedding, BCE) differs from both; the
 *   numbers to match (LlamaRec Table 1) come from the authors' code, so that is what is followed.
 */
import { z } from "zod";
import { BufferArena, withArena } from "../tensor/memory.js";
import { Dropout, Embedding, LayerNorm, Linear } from "../tensor/nn/layers.js";
import { Module, ModuleList } from "../tensor/nn/module.js";
import { linearCrossEntropy } from "../tensor/ops/cross_entropy.js";
import { add, relu } from "../tensor/ops/elementwise.js";
import { embedding } from "../tensor/ops/embedding.js";
import { matmul } from "../tensor/ops/matmul.js";
import { Rng } from "../tensor/rng.js";
import { backward, clearTape, noGrad } from "../tensor/tape.js";
import type { Tensor } from "../tensor/tensor.js";
import { dropPaddingRowGrad, type PackedBatch, packBatch } from "./positions.js";
import type { RetrieverContext, RetrieverEntry } from "./registry.js";
import { embeddingInitOption, initEmbeddings, QkvAttention, truncatedNormalInit } from "./transformer.js";
import type { SequenceBatch, SequentialRetriever } from "./types.js";

const probability = z.number().min(0).lt(1);

export const sasrecOptions = z.strictObject({
  hiddenDim: z.number().int().positive().default(64).describe("hidden size (64)"),
  numBlocks: z.number().int().positive().default(2).describe("transformer blocks (2)"),
  numHeads: z.number().int().positive().default(2).describe("attention heads (2)"),
  dropout: probability.default(0.2).describe("embedding, residual and feed-forward dropout (tuned 0.1–0.5)"),
  attnDropout: probability.optional().describe("dropout on attention weights (default: dropout)"),
  embeddingInit: embeddingInitOption,
});

export type SasrecConfig = z.output<typeof sasrecOptions> & RetrieverContext;

/** LN(attention(Wq·query, Wk·x, Wv·x) + query), causal. */
class CausalSelfAttention extends QkvAttention {
  readonly layerNorm: LayerNorm;

  constructor(d: number, heads: number, pAttn: number, rng: Rng) {
    super(d, heads, pAttn, true, rng);
    this.layerNorm = this.registerModule("layer_norm", new LayerNorm(d));
  }

  forward(query: Tensor, x: Tensor, pack: PackedBatch): Tensor {
    return this.layerNorm.forward(add(this.attend(query, x, pack), query));
  }
}

class FeedForward extends Module {
  readonly conv1: Linear;
  readonly conv2: Linear;
  readonly dropout: Dropout;
  readonly layerNorm: LayerNorm;

  constructor(d: number, p: number, rng: Rng) {
    super();
    this.conv1 = this.registerModule("conv1", new Linear(d, 4 * d));
    this.conv2 = this.registerModule("conv2", new Linear(4 * d, d));
    this.dropout = this.registerModule("dropout", new Dropout(p, rng.fork()));
    this.layerNorm = this.registerModule("layer_norm", new LayerNorm(d));
  }

  forward(x: Tensor): Tensor {
    const inner = this.dropout.forward(relu(this.conv1.forward(x)));
    return this.layerNorm.forward(this.dropout.forwardAdd(this.conv2.forward(inner), x));
  }
}

class SasBlock extends Module {
  readonly layerNorm: LayerNorm;
  readonly attention: CausalSelfAttention;
  readonly feedForward: FeedForward;

  constructor(c: SasrecConfig, rng: Rng) {
    super();
    this.layerNorm = this.registerModule("layer_norm", new LayerNorm(c.hiddenDim));
    this.attention = this.registerModule(
      "attention",
      new CausalSelfAttention(c.hiddenDim, c.numHeads, c.attnDropout ?? c.dropout, rng.fork()),
    );
    this.feedForward = this.registerModule("feed_forward", new FeedForward(c.hiddenDim, c.dropout, rng));
  }

  forward(x: Tensor, pack: PackedBatch): Tensor {
    return this.feedForward.forward(this.attention.forward(this.layerNorm.forward(x), x, pack));
  }
}

class SasEmbedding extends Module {
  readonly token: Embedding;
  readonly position: Embedding;
  readonly dropout: Dropout;

  constructor(c: SasrecConfig, rng: Rng) {
    super();
    this.token = this.registerModule("token", new Embedding(c.numItems + 1, c.hiddenDim));
    this.position = this.registerModule("position", new Embedding(c.maxLen + 1, c.hiddenDim));
    this.dropout = this.registerModule("dropout", new Dropout(c.dropout, rng.fork()));
  }
}

export class SasRec extends Module implements SequentialRetriever {
  readonly modelName = "sasrec";
  readonly config: Readonly<SasrecConfig>;
  readonly numItems: number;
  readonly embedding: SasEmbedding;
  readonly blocks: ModuleList<SasBlock>;
  private readonly arena = new BufferArena();

  constructor(config: SasrecConfig) {
    super();
    if (config.hiddenDim % config.numHeads !== 0)
      throw new RangeError(
        `sasrec: hiddenDim ${config.hiddenDim} is not divisible by ${config.numHeads} heads`,
      );
    this.config = Object.freeze({ ...config });
    this.numItems = config.numItems;
    const rng = new Rng(config.seed);
    this.embedding = this.registerModule("embedding", new SasEmbedding(config, rng));
    this.blocks = this.registerModule(
      "model",
      new ModuleList(Array.from({ length: config.numBlocks }, () => new SasBlock(config, rng))),
    );
    truncatedNormalInit(this, rng);
    const e = this.embedding;
    initEmbeddings(config.embeddingInit, [e.token.weight.data, e.position.weight.data], rng);
    this.embedding.token.weight.data.fill(0, 0, config.hiddenDim);
  }

  setTraining(training: boolean): void {
    this.train(training);
  }

  /** Hidden states [N, d] of the packed rows of a left-padded batch (see packBatch). */
  private hidden(pack: PackedBatch, L: number): Tensor {
    if (L > this.config.maxLen)
      throw new RangeError(`sasrec: sequences of length ${L} exceed maxLen ${this.config.maxLen}`);
    const e = this.embedding;
    const N = pack.rows.length;
    let x = e.dropout.forward(
      add(e.token.forward(pack.tokens, [N]), e.position.forward(pack.positions, [N])),
    );
    for (const block of this.blocks.items) x = block.forward(x, pack);
    return x;
  }

  lossAndBackward(batch: SequenceBatch): number {
    clearTape();
    const { batchSize: B, seqLen: L } = batch;
    return withArena(this.arena, () => {
      const pack = packBatch(batch.tokens, B, L, batch.labels);
      const labels = Int32Array.from(pack.rows, (r) => batch.labels[r]!);
      const loss = linearCrossEntropy(this.hidden(pack, L), this.embedding.token.weight, null, labels, 0);
      backward(loss);
      dropPaddingRowGrad(this.embedding.token.weight.grad, this.config.hiddenDim);
      return loss.item();
    });
  }

  scoreNext(tokens: Int32Array, batchSize: number, seqLen: number): Float32Array {
    const wasTraining = this.training;
    this.eval();
    try {
      return noGrad(() => {
        const pack = packBatch(tokens, batchSize, seqLen);
        const last = embedding(this.hidden(pack, seqLen), pack.lastRows);
        return matmul(last, this.embedding.token.weight, { transB: true }).data;
      });
    } finally {
      this.train(wasTraining);
    }
  }
}

export const sasrecEntry: RetrieverEntry<typeof sasrecOptions> = {
  name: "sasrec",
  description: "SASRec: causal self-attention (Kang & McAuley 2018), as the LlamaRec authors' baseline",
  schema: sasrecOptions,
  create: (config) => new SasRec(config),
};
