/**
 * BERT4Rec (Sun et al., CIKM 2019) as the LlamaRec authors' code base implements it (Yue et al.,
 * model/bert.py, model/attention.py and dataloader/bert.py of github.com/Yueeeeeeee/RecSys-Extraction-Attack):
 *   (item + mask-token embedding, padding row 0) + learned positions (1…n from the first token) → LN →
 *   dropout → blocks of [x = LN(x + dropout(Wₒ·attention(Wq·x, Wk·x, Wv·x))) bidirectional, padding keys
 *   masked, attention dropout; x = LN(x + dropout(W₂·GELU(W₁·x)))] → GELU(W·x) → scores = ·Eᵀ + bias.
 * 2 blocks, 2 heads, d = 64, feed-forward 4d. Cloze training (the model's batching hook): each item of a
 * training window is chosen with probability maskProb (0.25 as the LlamaRec authors' configuration; the
 * window's last item with maskProb + 0.1·(1 − maskProb)), at most maxPredictions distinct items per window;
 * a chosen item becomes the mask token (80%), a random item (10%) or stays (10%), and is labelled with
 * itself. Cross-entropy over the whole vocabulary at the labelled positions. At inference the mask token is
 * appended after the history (the window keeps its last maxLen − 1 items) and its scores rank the items.
 *
 * Every layer runs on the packed rows of a batch (positions.ts, packBatch): padding positions that carry
 * no label are never computed (they cannot influence a labelled position: padding keys are masked).
 *
 * Init as theirs: truncated normal (σ 0.02, ±0.04) on every weight except layer norms and the embeddings;
 * item (with the mask token) and position embeddings N(0, 1), torch's default that their file leaves in
 * place; the padding row zero and never updated (padding_idx). `embeddingInit: "truncated-normal"` starts
 * the embeddings at σ 0.02 too (transformer.ts).
 *
 * Where this differs from the authors' code, and why:
 * - The masking stream is this project's seeded generator, checkpointed with the model's other random streams
 *   so that a resumed run masks exactly as an uninterrupted one (theirs: Python's unseeded `random`).
 * - Windows are masked after truncation to maxLen (theirs masks a window of up to maxLen + step − 1 items
 *   and then keeps the last maxLen, so dropped items can use up the maxPredictions budget).
 * - Layer norm is the standard one (theirs: unbiased std + 1e-6); GELU is exact (theirs: the tanh
 *   approximation, within 1e-3); padded query rows output 0 (they are never labelled and never attended to).
 */
import { z } from "zod";
import { BufferArena, withArena } from "../tensor/memory.js";
import { Dropout, Embedding, LayerNorm, Linear } from "../tensor/nn/layers.js";
import { Module, ModuleList } from "../tensor/nn/module.js";
import { gelu } from "../tensor/ops/activation.js";
import { linearCrossEntropy } from "../tensor/ops/cross_entropy.js";
import { add } from "../tensor/ops/elementwise.js";
import { embedding } from "../tensor/ops/embedding.js";
import { matmul } from "../tensor/ops/matmul.js";
import { Rng } from "../tensor/rng.js";
import { backward, clearTape, noGrad } from "../tensor/tape.js";
import { Parameter, type Tensor } from "../tensor/tensor.js";
import { type BatchSource, type BatchSourceOptions, TrainingBatches } from "./batches.js";
import { dropPaddingRowGrad, type PackedBatch, packBatch } from "./positions.js";
import type { RetrieverContext, RetrieverEntry } from "./registry.js";
import { embeddingInitOption, initEmbeddings, QkvAttention, truncatedNormalInit } from "./transformer.js";
import type { SequenceBatch, SequentialRetriever } from "./types.js";

const probability = z.number().min(0).lt(1);

export const bert4recOptions = z.strictObject({
  hiddenDim: z.number().int().positive().default(64).describe("hidden size (64)"),
  numBlocks: z.number().int().positive().default(2).describe("transformer blocks (2)"),
  numHeads: z.number().int().positive().default(2).describe("attention heads (2)"),
  dropout: probability.default(0.2).describe("embedding, residual dropout (tuned 0.1–0.5)"),
  attnDropout: probability.optional().describe("dropout on attention weights (default: dropout)"),
  maskProb: z.number().gt(0).lt(1).default(0.25).describe("cloze masking probability (0.25)"),
  maxPredictions: z
    .number()
    .int()
    .positive()
    .optional()
    .describe("masked items per window at most (default: ceil(maskProb × maxLen))"),
  embeddingInit: embeddingInitOption,
});

export type Bert4recConfig = z.output<typeof bert4recOptions> & RetrieverContext;

/** Wₒ·attention(Wq·x, Wk·x, Wv·x), bidirectional. */
class BidirectionalAttention extends QkvAttention {
  readonly outputLinear: Linear;

  constructor(d: number, heads: number, pAttn: number, rng: Rng) {
    super(d, heads, pAttn, false, rng);
    this.outputLinear = this.registerModule("output_linear", new Linear(d, d));
  }

  forward(x: Tensor, pack: PackedBatch): Tensor {
    return this.outputLinear.forward(this.attend(x, x, pack));
  }
}

/** LN(x + dropout(sublayer(x))), the BERT4Rec residual. */
class Sublayer extends Module {
  readonly layerNorm: LayerNorm;
  readonly dropout: Dropout;

  constructor(d: number, p: number, rng: Rng) {
    super();
    this.layerNorm = this.registerModule("layer_norm", new LayerNorm(d));
    this.dropout = this.registerModule("dropout", new Dropout(p, rng.fork()));
  }

  forward(x: Tensor, y: Tensor): Tensor {
    return this.layerNorm.forward(this.dropout.forwardAdd(y, x));
  }
}

class BertBlock extends Module {
  readonly attention: BidirectionalAttention;
  readonly w1: Linear;
  readonly w2: Linear;
  readonly inputSublayer: Sublayer;
  readonly outputSublayer: Sublayer;

  constructor(c: Bert4recConfig, rng: Rng) {
    super();
    const d = c.hiddenDim;
    this.attention = this.registerModule(
      "attention",
      new BidirectionalAttention(d, c.numHeads, c.attnDropout ?? c.dropout, rng.fork()),
    );
    this.w1 = this.registerModule("feed_forward.w_1", new Linear(d, 4 * d));
    this.w2 = this.registerModule("feed_forward.w_2", new Linear(4 * d, d));
    this.inputSublayer = this.registerModule("input_sublayer", new Sublayer(d, c.dropout, rng));
    this.outputSublayer = this.registerModule("output_sublayer", new Sublayer(d, c.dropout, rng));
  }

  forward(x: Tensor, pack: PackedBatch): Tensor {
    const h = this.inputSublayer.forward(x, this.attention.forward(x, pack));
    return this.outputSublayer.forward(h, this.w2.forward(gelu(this.w1.forward(h))));
  }
}

class BertEmbedding extends Module {
  readonly token: Embedding;
  readonly position: Embedding;
  readonly layerNorm: LayerNorm;
  readonly dropout: Dropout;

  constructor(c: Bert4recConfig, rng: Rng) {
    super();
    this.token = this.registerModule("token", new Embedding(c.numItems + 2, c.hiddenDim));
    this.position = this.registerModule("position", new Embedding(c.maxLen + 1, c.hiddenDim));
    this.layerNorm = this.registerModule("layer_norm", new LayerNorm(c.hiddenDim));
    this.dropout = this.registerModule("dropout", new Dropout(c.dropout, rng.fork()));
  }
}

class BertModel extends Module {
  readonly blocks: ModuleList<BertBlock>;
  readonly linear: Linear;
  readonly bias: Parameter;

  constructor(c: Bert4recConfig, rng: Rng) {
    super();
    this.blocks = this.registerModule(
      "transformer_blocks",
      new ModuleList(Array.from({ length: c.numBlocks }, () => new BertBlock(c, rng))),
    );
    this.linear = this.registerModule("linear", new Linear(c.hiddenDim, c.hiddenDim));
    this.bias = this.registerParameter("bias", Parameter.zerosNamed("bias", [c.numItems + 2]));
  }
}

/** The cloze masker's generator, a module so that its state is checkpointed with the dropout streams. */
class ClozeMasker extends Module {
  constructor(readonly rng: Rng) {
    super();
  }

  protected override ownRng(): Rng {
    return this.rng;
  }
}

/**
 * Cloze-masks one left-padded window (`items`, the training labels row: the window's items, 0 = padding)
 * into tokens/labels, drawing from `rng` (see the file comment for the rule).
 */
export function clozeMaskRow(
  items: Int32Array,
  tokens: Int32Array,
  labels: Int32Array,
  c: { maskProb: number; maxPredictions: number; numItems: number },
  rng: Rng,
): void {
  const maskToken = c.numItems + 1;
  const covered = new Set<number>();
  const L = items.length;
  for (let t = 0; t < L; t++) {
    const s = items[t]!;
    tokens[t] = s;
    labels[t] = 0;
    if (s === 0 || covered.size >= c.maxPredictions || covered.has(s)) continue;
    const p = t === L - 1 ? c.maskProb + 0.1 * (1 - c.maskProb) : c.maskProb;
    let u = rng.uniform();
    if (u >= p) continue;
    covered.add(s);
    u /= p;
    if (u < 0.8) tokens[t] = maskToken;
    else if (u < 0.9) tokens[t] = 1 + rng.int(c.numItems);
    labels[t] = s;
  }
}

export class Bert4Rec extends Module implements SequentialRetriever {
  readonly modelName = "bert4rec";
  readonly config: Readonly<Bert4recConfig>;
  readonly numItems: number;
  readonly embedding: BertEmbedding;
  readonly model: BertModel;
  readonly masker: ClozeMasker;
  private readonly arena = new BufferArena();

  constructor(config: Bert4recConfig) {
    super();
    if (config.hiddenDim % config.numHeads !== 0)
      throw new RangeError(
        `bert4rec: hiddenDim ${config.hiddenDim} is not divisible by ${config.numHeads} heads`,
      );
    this.config = Object.freeze({
      ...config,
      maxPredictions: config.maxPredictions ?? Math.ceil(config.maskProb * config.maxLen),
    });
    this.numItems = config.numItems;
    const rng = new Rng(config.seed);
    this.embedding = this.registerModule("embedding", new BertEmbedding(config, rng));
    this.model = this.registerModule("model", new BertModel(config, rng));
    this.masker = this.registerModule("masker", new ClozeMasker(rng.fork()));
    truncatedNormalInit(this, rng);
    const e = this.embedding;
    initEmbeddings(config.embeddingInit, [e.token.weight.data, e.position.weight.data], rng);
    this.embedding.token.weight.data.fill(0, 0, config.hiddenDim);
  }

  setTraining(training: boolean): void {
    this.train(training);
  }

  /** Cloze batches over the shared training windows; masks are drawn when a batch is served. */
  trainingBatches(train: readonly (readonly number[])[], opts: BatchSourceOptions): BatchSource {
    const windows = new TrainingBatches(train, opts);
    const c = { ...this.config, maxPredictions: this.config.maxPredictions! };
    return {
      batchesPerEpoch: windows.batchesPerEpoch,
      batch: (epoch, index) => {
        const w = windows.batch(epoch, index);
        const L = w.seqLen;
        const tokens = new Int32Array(w.labels.length);
        const labels = new Int32Array(w.labels.length);
        for (let b = 0; b < w.batchSize; b++) {
          const o = b * L;
          clozeMaskRow(
            w.labels.subarray(o, o + L),
            tokens.subarray(o, o + L),
            labels.subarray(o, o + L),
            c,
            this.masker.rng,
          );
        }
        return { batchSize: w.batchSize, seqLen: L, tokens, labels };
      },
    };
  }

  /** Hidden states [N, d] of the packed rows of a left-padded batch (see packBatch). */
  private hidden(pack: PackedBatch, L: number): Tensor {
    if (L > this.config.maxLen)
      throw new RangeError(`bert4rec: sequences of length ${L} exceed maxLen ${this.config.maxLen}`);
    const e = this.embedding;
    const N = pack.rows.length;
    let x = add(e.token.forward(pack.tokens, [N]), e.position.forward(pack.positions, [N]));
    x = e.dropout.forward(e.layerNorm.forward(x));
    for (const block of this.model.blocks.items) x = block.forward(x, pack);
    return gelu(this.model.linear.forward(x));
  }

  lossAndBackward(batch: SequenceBatch): number {
    clearTape();
    const { batchSize: B, seqLen: L } = batch;
    return withArena(this.arena, () => {
      const pack = packBatch(batch.tokens, B, L, batch.labels);
      const labels = Int32Array.from(pack.rows, (r) => batch.labels[r]!);
      const h = this.hidden(pack, L);
      const loss = linearCrossEntropy(h, this.embedding.token.weight, this.model.bias, labels, 0);
      backward(loss);
      dropPaddingRowGrad(this.embedding.token.weight.grad, this.config.hiddenDim);
      return loss.item();
    });
  }

  /** The history's last seqLen − 1 items, then the mask token; scores of items 0…numItems at the mask. */
  scoreNext(tokens: Int32Array, batchSize: number, seqLen: number): Float32Array {
    const wasTraining = this.training;
    this.eval();
    try {
      return noGrad(() => {
        const V = this.numItems + 1;
        const input = new Int32Array(tokens.length);
        for (let b = 0; b < batchSize; b++) {
          const o = b * seqLen;
          input.set(tokens.subarray(o + 1, o + seqLen), o);
          input[o + seqLen - 1] = this.numItems + 1;
        }
        const pack = packBatch(input, batchSize, seqLen);
        const last = embedding(this.hidden(pack, seqLen), pack.lastRows);
        const all = add(matmul(last, this.embedding.token.weight, { transB: true }), this.model.bias).data;
        const scores = new Float32Array(batchSize * V);
        for (let b = 0; b < batchSize; b++) scores.set(all.subarray(b * (V + 1), b * (V + 1) + V), b * V);
        return scores;
      });
    } finally {
      this.train(wasTraining);
    }
  }
}

export const bert4recEntry: RetrieverEntry<typeof bert4recOptions> = {
  name: "bert4rec",
  description:
    "BERT4Rec: bidirectional self-attention with cloze training (Sun et al. 2019), authors' baseline",
  schema: bert4recOptions,
  create: (config) => new Bert4Rec(config),
};
