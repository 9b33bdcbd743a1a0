/**
 * LRURec (Yue et al., "Linear Recurrent Units for Sequential Recommendation", WSDM 2024), the retriever of
 * LlamaRec, reproducing the official model/lru.py: item embedding → layer norm(dropout) → blocks of
 * [LRU layer (complex diagonal recurrence, parallel scan over left padding to a power of two) + position-wise
 * feed-forward] → scores = hidden · item-embeddingᵀ + item bias.
 *
 * Differences from the PyTorch code that do not change the function computed:
 * - Complex weights are pairs of real parameters ("in_proj.weight.real"/".imag"). out_proj's imaginary bias
 *   is dropped: only the real part of out_proj is used, so it never receives a gradient.
 * - Only rows that matter are computed: per sequence, from the first position holding a token or a label to
 *   the end. Earlier positions are padding whose state never propagates (mask 0) and that carry no label.
 *   The scan runs on these rows with their true positions in the padded sequence, so every update is the
 *   official one; for left-padded rows the scan op runs the equivalent sequential recurrence (see
 *   src/tensor/ops/linear_recurrence.ts).
 * - Cross-entropy is fused (logits never materialised) and taken over labelled rows only.
 * - A training step's activations live in a recycled buffer arena (src/tensor/memory.ts).
 */
import { BufferArena, withArena } from "../tensor/memory.js";
import { Dropout, Embedding, LayerNorm, Linear } from "../tensor/nn/layers.js";
import { Module, ModuleList } from "../tensor/nn/module.js";
import { linearCrossEntropy } from "../tensor/ops/cross_entropy.js";
import { add, cos, exp, mul, neg, sin } from "../tensor/ops/elementwise.js";
import { embedding } from "../tensor/ops/embedding.js";
import { linearRecurrenceScan, type ScanLayout } from "../tensor/ops/linear_recurrence.js";
import { linear, matmul } from "../tensor/ops/matmul.js";
import { concat, reshape, slice, transpose } from "../tensor/ops/shape.js";
import { Rng } from "../tensor/rng.js";
import { backward, clearTape, noGrad } from "../tensor/tape.js";
import { Parameter, type Tensor } from "../tensor/tensor.js";
import { InputError } from "../util/errors.js";
import type { SequenceBatch, SequentialRetriever } from "./types.js";

export interface LruConfig {
  numItems: number;
  hiddenDim?: number;
  numBlocks?: number;
  /** Embedding and feed-forward dropout (official bert_dropout). */
  dropout?: number;
  /** Dropout on the LRU layer output (official bert_attn_dropout); defaults to `dropout`. */
  attnDropout?: number;
  seed?: number;
}

export type ResolvedLruConfig = Required<LruConfig>;

/** Official defaults: d = 64, 2 blocks, dropout 0.2 (config.py), seed 42. */
export function resolveLruConfig(config: LruConfig): ResolvedLruConfig {
  const c: ResolvedLruConfig = {
    numItems: config.numItems,
    hiddenDim: config.hiddenDim ?? 64,
    numBlocks: config.numBlocks ?? 2,
    dropout: config.dropout ?? 0.2,
    attnDropout: config.attnDropout ?? config.dropout ?? 0.2,
    seed: config.seed ?? 42,
  };
  const positiveInt = (v: number) => Number.isInteger(v) && v > 0;
  if (!positiveInt(c.numItems))
    throw new InputError(`lru model config: numItems must be a positive integer, got ${c.numItems}`);
  if (!positiveInt(c.hiddenDim))
    throw new InputError(`lru model config: hiddenDim must be a positive integer, got ${c.hiddenDim}`);
  if (!positiveInt(c.numBlocks))
    throw new InputError(`lru model config: numBlocks must be a positive integer, got ${c.numBlocks}`);
  for (const key of ["dropout", "attnDropout"] as const) {
    if (!(c[key] >= 0 && c[key] < 1))
      throw new InputError(`lru model config: ${key} must be in [0, 1), got ${c[key]}`);
  }
  if (!Number.isFinite(c.seed))
    throw new InputError(`lru model config: seed must be a number, got ${c.seed}`);
  return c;
}

/** A complex weight [out, in] and bias [out] as real/imaginary parameter pairs. */
class ComplexLinear extends Module {
  readonly weightRe: Parameter;
  readonly weightIm: Parameter;
  readonly biasRe: Parameter;
  readonly biasIm: Parameter | null;

  constructor(inF: number, outF: number, imaginaryBias: boolean) {
    super();
    this.weightRe = this.registerParameter("weight.real", Parameter.zerosNamed("weight.real", [outF, inF]));
    this.weightIm = this.registerParameter("weight.imag", Parameter.zerosNamed("weight.imag", [outF, inF]));
    this.biasRe = this.registerParameter("bias.real", Parameter.zerosNamed("bias.real", [outF]));
    this.biasIm = imaginaryBias
      ? this.registerParameter("bias.imag", Parameter.zerosNamed("bias.imag", [outF]))
      : null;
  }

  /**
   * Real input x [N, in] → complex output packed [N, re(out) | im(out)], each output multiplied by the
   * real `scale` [2·out] (γ). The scale is folded into the small weight instead of the big activation.
   */
  forwardFromReal(x: Tensor, scale: Tensor): Tensor {
    const w = concat([this.weightRe, this.weightIm], 0);
    const b = concat([this.biasRe, this.biasIm!], 0);
    return linear(x, transpose(mul(transpose(w), scale)), mul(b, scale));
  }

  /** Complex input packed [N, re(in) | im(in)] → real part of the output [N, out]. */
  forwardRealPart(h: Tensor): Tensor {
    // Re((hr + i·hi)(Wr + i·Wi)ᵀ) = hr·Wrᵀ − hi·Wiᵀ
    const w = concat([this.weightRe, neg(this.weightIm)], 1);
    return linear(h, w, this.biasRe);
  }
}

class LruLayer extends Module {
  readonly paramsLog: Parameter;
  readonly inProj: ComplexLinear;
  readonly outProj: ComplexLinear;
  readonly dropout: Dropout;
  readonly layerNorm: LayerNorm;
  readonly stateSize: number;

  constructor(d: number, dropout: number, rng: Rng, rMin = 0.8, rMax = 0.99) {
    super();
    const C = 2 * d;
    this.stateSize = C;
    // ν, θ, γ in log space: |λ| = e^(−ν) uniform in the ring [r_min, r_max] (by area), phase θ in [0, 2π),
    // γ = sqrt(1 − |λ|²) normalises the input.
    const init = new Float32Array(3 * C);
    for (let c = 0; c < C; c++) {
      const u1 = rng.uniform();
      const u2 = positiveUniform(rng);
      const nuLog = Math.log(-0.5 * Math.log(u1 * (rMax ** 2 - rMin ** 2) + rMin ** 2));
      const thetaLog = Math.log(u2 * Math.PI * 2);
      const modulus = Math.exp(-Math.exp(nuLog));
      init[c] = nuLog;
      init[C + c] = thetaLog;
      init[2 * C + c] = Math.log(Math.sqrt(1 - modulus * modulus));
    }
    this.paramsLog = this.registerParameter("params_log", new Parameter("params_log", init, [3, C]));
    this.inProj = this.registerModule("in_proj", new ComplexLinear(d, C, true));
    this.outProj = this.registerModule("out_proj", new ComplexLinear(C, d, false));
    this.dropout = this.registerModule("dropout", new Dropout(dropout, rng.fork()));
    this.layerNorm = this.registerModule("layer_norm", new LayerNorm(d));
  }

  /** λ packed [re | im] (shape [2C]) and γ repeated for both halves (shape [2C]). */
  lambdaAndGamma(): { lambda: Tensor; gamma: Tensor } {
    const C = this.stateSize;
    const e = exp(this.paramsLog);
    const nu = slice(e, 0, 0, 1);
    const theta = slice(e, 0, 1, 2);
    const gamma = slice(e, 0, 2, 3);
    const modulus = exp(neg(nu));
    const lambda = reshape(concat([mul(modulus, cos(theta)), mul(modulus, sin(theta))], 1), [2 * C]);
    return { lambda, gamma: reshape(concat([gamma, gamma], 1), [2 * C]) };
  }

  /**
   * With `outRows`, only those rows of the output are computed (the recurrence still runs over every row):
   * what inference needs from the last block.
   */
  forward(x: Tensor, layout: ScanLayout, outRows: Int32Array | null = null): Tensor {
    const { lambda, gamma } = this.lambdaAndGamma();
    const bu = this.inProj.forwardFromReal(x, gamma);
    let h = linearRecurrenceScan(bu, lambda, layout, { consumeInput: true });
    if (outRows) {
      h = embedding(h, outRows);
      x = embedding(x, outRows);
    }
    // dropout + residual in one pass, then the layer norm
    return this.layerNorm.forward(this.dropout.forwardAdd(this.outProj.forwardRealPart(h), x));
  }
}

class PositionwiseFeedForward extends Module {
  readonly w1: Linear;
  readonly w2: Linear;
  readonly dropout: Dropout;
  readonly layerNorm: LayerNorm;

  constructor(d: number, dFf: number, dropout: number, rng: Rng) {
    super();
    this.w1 = this.registerModule("w_1", new Linear(d, dFf));
    this.w2 = this.registerModule("w_2", new Linear(dFf, d));
    this.dropout = this.registerModule("dropout", new Dropout(dropout, rng.fork()));
    this.layerNorm = this.registerModule("layer_norm", new LayerNorm(d));
  }

  forward(x: Tensor): Tensor {
    const inner = this.dropout.forwardGelu(this.w1.forward(x));
    return this.layerNorm.forward(this.dropout.forwardAdd(this.w2.forward(inner), x));
  }
}

class LruBlock extends Module {
  readonly lruLayer: LruLayer;
  readonly feedForward: PositionwiseFeedForward;

  constructor(d: number, dropout: number, attnDropout: number, rng: Rng) {
    super();
    this.lruLayer = this.registerModule("lru_layer", new LruLayer(d, attnDropout, rng));
    this.feedForward = this.registerModule(
      "feed_forward",
      new PositionwiseFeedForward(d, 4 * d, dropout, rng),
    );
  }

  forward(x: Tensor, layout: ScanLayout, outRows: Int32Array | null = null): Tensor {
    return this.feedForward.forward(this.lruLayer.forward(x, layout, outRows));
  }
}

class LruEmbedding extends Module {
  readonly token: Embedding;
  readonly layerNorm: LayerNorm;
  readonly embedDropout: Dropout;

  constructor(numItems: number, d: number, dropout: number, rng: Rng) {
    super();
    this.token = this.registerModule("token", new Embedding(numItems + 1, d));
    this.layerNorm = this.registerModule("layer_norm", new LayerNorm(d));
    this.embedDropout = this.registerModule("embed_dropout", new Dropout(dropout, rng.fork()));
  }

  forward(ids: Int32Array): Tensor {
    return this.layerNorm.forward(this.embedDropout.forward(this.token.forward(ids)));
  }
}

class LruBackbone extends Module {
  readonly blocks: ModuleList<LruBlock>;
  readonly bias: Parameter;

  constructor(c: ResolvedLruConfig, rng: Rng) {
    super();
    const blocks = Array.from(
      { length: c.numBlocks },
      () => new LruBlock(c.hiddenDim, c.dropout, c.attnDropout, rng),
    );
    this.blocks = this.registerModule("lru_blocks", new ModuleList(blocks));
    this.bias = this.registerParameter("bias", Parameter.zerosNamed("bias", [c.numItems + 1]));
  }
}

/** The rows a batch needs (see the file comment) and where they live. */
export interface RowPlan {
  readonly ids: Int32Array;
  readonly labels: Int32Array;
  readonly layout: ScanLayout;
  /** Row of each sequence's last position. */
  readonly lastRow: Int32Array;
}

/** Chooses, per sequence, the rows from its first token-or-label position to its end. */
export function planRows(
  tokens: Int32Array,
  labels: Int32Array | null,
  batchSize: number,
  seqLen: number,
): RowPlan {
  if (!(Number.isInteger(seqLen) && seqLen >= 1 && Number.isInteger(batchSize) && batchSize >= 0)) {
    throw new RangeError(`lru: batch of ${batchSize} sequences of length ${seqLen}`);
  }
  if (tokens.length !== batchSize * seqLen) {
    throw new RangeError(`lru: ${tokens.length} tokens for a ${batchSize}×${seqLen} batch`);
  }
  if (labels && labels.length !== tokens.length) {
    throw new RangeError(`lru: ${labels.length} labels for ${tokens.length} tokens`);
  }
  const start = new Int32Array(batchSize);
  let rows = 0;
  for (let b = 0; b < batchSize; b++) {
    let s = seqLen - 1;
    for (let t = 0; t < seqLen; t++) {
      const i = b * seqLen + t;
      if (tokens[i]! > 0 || (labels !== null && labels[i]! > 0)) {
        s = t;
        break;
      }
    }
    start[b] = s;
    rows += seqLen - s;
  }
  const ids = new Int32Array(rows);
  const rowLabels = new Int32Array(rows);
  const mask = new Uint8Array(rows);
  const rowStart = new Int32Array(batchSize);
  const length = new Int32Array(batchSize);
  const lastRow = new Int32Array(batchSize);
  let r = 0;
  for (let b = 0; b < batchSize; b++) {
    rowStart[b] = r;
    length[b] = seqLen - start[b]!;
    for (let t = start[b]!; t < seqLen; t++, r++) {
      const i = b * seqLen + t;
      ids[r] = tokens[i]!;
      rowLabels[r] = labels ? labels[i]! : 0;
      mask[r] = tokens[i]! > 0 ? 1 : 0;
    }
    lastRow[b] = r - 1;
  }
  const paddedLength = 2 ** Math.ceil(Math.log2(seqLen));
  return { ids, labels: rowLabels, layout: { rowStart, length, paddedLength, mask }, lastRow };
}

export class LruRec extends Module implements SequentialRetriever {
  readonly modelName = "lru";
  readonly config: Readonly<ResolvedLruConfig>;
  readonly numItems: number;
  readonly embedding: LruEmbedding;
  readonly model: LruBackbone;
  private readonly arena = new BufferArena();

  constructor(config: LruConfig) {
    super();
    const c = resolveLruConfig(config);
    this.config = Object.freeze({ ...c });
    this.numItems = c.numItems;
    const rng = new Rng(c.seed);
    this.embedding = this.registerModule(
      "embedding",
      new LruEmbedding(c.numItems, c.hiddenDim, c.dropout, rng),
    );
    this.model = this.registerModule("model", new LruBackbone(c, rng));
    this.truncatedNormalInit(rng);
  }

  /** Official init: every parameter except layer norms and params_log ~ N(0, 0.02²) truncated to ±0.04. */
  private truncatedNormalInit(rng: Rng): void {
    for (const [name, p] of this.namedParameters()) {
      if (name.includes("layer_norm") || name.includes("params_log")) continue;
      rng.fillTruncatedNormal(p.data, 0.02, -0.04, 0.04);
    }
  }

  setTraining(training: boolean): void {
    this.train(training);
  }

  /**
   * Final hidden states [rows, d] of the planned rows; with `lastOnly`, [batch, d] of each sequence's last
   * position, where the last block computes only those rows after its recurrence (each row's value is the
   * same either way: every op but the recurrence works row by row).
   */
  hidden(plan: RowPlan, lastOnly = false): Tensor {
    let x = this.embedding.forward(plan.ids);
    const blocks = this.model.blocks.items;
    blocks.forEach((block, i) => {
      x = block.forward(x, plan.layout, lastOnly && i === blocks.length - 1 ? plan.lastRow : null);
    });
    return lastOnly && blocks.length === 0 ? embedding(x, plan.lastRow) : x;
  }

  lossAndBackward(batch: SequenceBatch): number {
    clearTape();
    const plan = planRows(batch.tokens, batch.labels, batch.batchSize, batch.seqLen);
    for (let r = 0; r < plan.labels.length; r++) {
      const l = plan.labels[r]!;
      if (l < 0 || l > this.numItems) throw new RangeError(`lru: label ${l} outside 0..${this.numItems}`);
    }
    // Activations and their gradients live only during this step: recycle their memory across steps.
    return withArena(this.arena, () => {
      const h = this.hidden(plan);
      const loss = linearCrossEntropy(h, this.embedding.token.weight, this.model.bias, plan.labels, 0);
      backward(loss);
      return loss.item();
    });
  }

  /** Mean loss in inference mode (no dropout, no gradients), e.g. for validation. */
  loss(batch: SequenceBatch): number {
    return this.inference(() => {
      const plan = planRows(batch.tokens, batch.labels, batch.batchSize, batch.seqLen);
      const h = this.hidden(plan);
      return linearCrossEntropy(h, this.embedding.token.weight, this.model.bias, plan.labels, 0).item();
    });
  }

  /** Runs `fn` in eval mode without a tape, then restores the previous mode. */
  private inference<T>(fn: () => T): T {
    const wasTraining = this.training;
    this.eval();
    try {
      return noGrad(fn);
    } finally {
      this.train(wasTraining);
    }
  }

  scoreNext(tokens: Int32Array, batchSize: number, seqLen: number): Float32Array {
    return this.inference(() => {
      const plan = planRows(tokens, null, batchSize, seqLen);
      // Intermediate activations are recycled across calls (warm memory); only the scores leave the arena.
      return withArena(this.arena, () => {
        const last = this.hidden(plan, true);
        // One GEMM over the last positions only: [B, d]·Eᵀ + bias. With d ≤ 256 (one depth block of the GEMM)
        // the bias is added inside the GEMM, the same bits as the product followed by a float32 add.
        const E = this.embedding.token.weight;
        const scores =
          this.config.hiddenDim <= 256
            ? linear(last, E, this.model.bias)
            : add(matmul(last, E, { transB: true }), this.model.bias);
        return scores.data.slice();
      });
    });
  }
}

export function createLru(config: LruConfig): LruRec {
  return new LruRec(config);
}

function positiveUniform(rng: Rng): number {
  let u = 0;
  while (u === 0) u = rng.uniform();
  return u;
}
