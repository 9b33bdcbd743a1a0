/**
 * NARM (Li et al., "Neural Attentive Session-based Recommendation", CIKM 2017) as the LlamaRec authors' code
 * base implements it (Yue et al., model/narm.py and dataloader/rnn.py of
 * github.com/Yueeeeeeee/RecSys-Extraction-Attack):
 *   item embedding → dropout → GRU (hidden 2d, over the history's items only: no compute over padding);
 *   global state c_g = last GRU state; local state c_l = Σⱼ αⱼ hⱼ with
 *   αⱼ = softmaxⱼ(v · hardsigmoid(A_g·c_g + A_l·hⱼ)); scores = dropout([c_g | c_l]) · (B·E)ᵀ, B: d → 4d.
 * d = 64. Training samples are the authors' (the model's batching hook): every prefix of every training history
 * predicts its next item (history[:i] → history[i], the last maxLen items of the prefix), shuffled per epoch,
 * cross-entropy over all items (the shared trainer; so is the LlamaRec paper's setup for its baselines).
 *
 * Where this differs from the authors' code, and why:
 * - Batches are left-padded (the project's layout) instead of right-padded; like theirs (packed sequences),
 *   only the histories' items are computed: embedding, input projection, GRU and attention run on the packed
 *   items of the batch, so the computation is the same.
 * - The activation is the code's hard sigmoid clamp(x/6 + ½, 0, 1); the paper uses a plain sigmoid.
 * - The original paper's bilinear decoder is the code's B·E projection; its dropout rates follow the shared
 *   `dropout` (embedding) and `attnDropout` (the [c_g | c_l] projection) options.
 * - Init as theirs: every weight (embedding, GRU, projections) truncated normal σ 0.02 within ±0.04.
 * - Only a batch's last position may carry a label (the prefix samples put it there); a batch with labels
 *   elsewhere is an error rather than silently ignored.
 */
import { z } from "zod";
import { BufferArena, withArena } from "../tensor/memory.js";
import { Dropout, Embedding, Linear } from "../tensor/nn/layers.js";
import { Module } from "../tensor/nn/module.js";
import { attentionPool } from "../tensor/ops/attention.js";
import { linearCrossEntropy } from "../tensor/ops/cross_entropy.js";
import { add, hardSigmoid } from "../tensor/ops/elementwise.js";
import { embedding } from "../tensor/ops/embedding.js";
import { gruPacked } from "../tensor/ops/gru.js";
import { linear, matmul } from "../tensor/ops/matmul.js";
import { concat } from "../tensor/ops/shape.js";
import { Rng } from "../tensor/rng.js";
import { backward, clearTape, noGrad } from "../tensor/tape.js";
import { Parameter, Tensor } from "../tensor/tensor.js";
import { type BatchSource, type BatchSourceOptions, encodeEvaluationRow, epochOrder } from "./batches.js";
import type { RetrieverContext, RetrieverEntry } from "./registry.js";
import type { SequenceBatch, SequentialRetriever } from "./types.js";

const probability = z.number().min(0).lt(1);

export const narmOptions = z.strictObject({
  hiddenDim: z.number().int().positive().default(64).describe("embedding size d; the GRU has 2d (64)"),
  dropout: probability.default(0.2).describe("embedding dropout (tuned 0.1–0.5)"),
  attnDropout: probability.optional().describe("dropout on [global | local] (default: dropout)"),
});

export type NarmConfig = z.output<typeof narmOptions> & RetrieverContext;

class NarmGru extends Module {
  readonly weightIh: Parameter;
  readonly weightHh: Parameter;
  readonly biasIh: Parameter;
  readonly biasHh: Parameter;

  constructor(inF: number, H: number) {
    super();
    this.weightIh = this.registerParameter(
      "weight_ih_l0",
      Parameter.zerosNamed("weight_ih_l0", [3 * H, inF]),
    );
    this.weightHh = this.registerParameter("weight_hh_l0", Parameter.zerosNamed("weight_hh_l0", [3 * H, H]));
    this.biasIh = this.registerParameter("bias_ih_l0", Parameter.zerosNamed("bias_ih_l0", [3 * H]));
    this.biasHh = this.registerParameter("bias_hh_l0", Parameter.zerosNamed("bias_hh_l0", [3 * H]));
  }

  /** Packed sequences x [N, in] (sequence b: rows offsets[b] … offsets[b+1] − 1) → every state [N, H]. */
  forward(x: Tensor, offsets: Int32Array): Tensor {
    return gruPacked(linear(x, this.weightIh, this.biasIh), this.weightHh, this.biasHh, offsets);
  }
}

/** Left-padded rows: where each history starts (its items must be a suffix of the row). */
function historyStarts(tokens: Int32Array, B: number, L: number): Int32Array {
  const start = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    let s = L;
    while (s > 0 && tokens[b * L + s - 1]! > 0) s--;
    for (let t = 0; t < s; t++)
      if (tokens[b * L + t]! !== 0)
        throw new RangeError(`narm: row ${b} is not left-padded at position ${t}`);
    start[b] = s;
  }
  return start;
}

export class Narm extends Module implements SequentialRetriever {
  readonly modelName = "narm";
  readonly config: Readonly<NarmConfig>;
  readonly numItems: number;
  readonly token: Embedding;
  readonly embedDropout: Dropout;
  readonly gruLayer: NarmGru;
  readonly aGlobal: Linear;
  readonly aLocal: Linear;
  readonly vVector: Linear;
  readonly bVector: Linear;
  readonly projDropout: Dropout;
  private readonly arena = new BufferArena();

  constructor(config: NarmConfig) {
    super();
    this.config = Object.freeze({ ...config });
    this.numItems = config.numItems;
    const d = config.hiddenDim;
    const H = 2 * d;
    const rng = new Rng(config.seed);
    this.token = this.registerModule("embedding.token", new Embedding(config.numItems + 1, d));
    this.embedDropout = this.registerModule(
      "embedding.embed_dropout",
      new Dropout(config.dropout, rng.fork()),
    );
    this.gruLayer = this.registerModule("model.gru", new NarmGru(d, H));
    this.aGlobal = this.registerModule("model.a_global", new Linear(H, H, false));
    this.aLocal = this.registerModule("model.a_local", new Linear(H, H, false));
    this.vVector = this.registerModule("model.v_vector", new Linear(H, 1, false));
    this.bVector = this.registerModule("model.b_vetor", new Linear(d, 2 * H, false));
    this.projDropout = this.registerModule(
      "model.proj_dropout",
      new Dropout(config.attnDropout ?? config.dropout, rng.fork()),
    );
    for (const p of this.parameters()) rng.fillTruncatedNormal(p.data, 0.02, -0.04, 0.04);
  }

  setTraining(training: boolean): void {
    this.train(training);
  }

  /** [c_global | c_local] [B, 4d] of left-padded histories, dropout applied in training. */
  private sessionState(tokens: Int32Array, B: number, L: number): Tensor {
    const start = historyStarts(tokens, B, L);
    // Only the histories' items are computed: packed rows, sequence b = rows offsets[b] … offsets[b+1] − 1.
    const offsets = new Int32Array(B + 1);
    for (let b = 0; b < B; b++) offsets[b + 1] = offsets[b]! + (L - start[b]!);
    const N = offsets[B]!;
    const items = new Int32Array(N);
    const rowSeq = new Int32Array(N);
    for (let b = 0, r = 0; b < B; b++)
      for (let t = start[b]!; t < L; t++, r++) {
        items[r] = tokens[b * L + t]!;
        rowSeq[r] = b;
      }
    const x = this.embedDropout.forward(this.token.forward(items, [N]));
    const local = this.gruLayer.forward(x, offsets); // every state [N, 2d]
    // c_global = each history's last state; an empty history's is 0 (a zero row appended for it).
    const empty = start.some((s) => s === L);
    const lastRows = Int32Array.from({ length: B }, (_, b) => (start[b] === L ? N : offsets[b + 1]! - 1));
    const H = 2 * this.config.hiddenDim;
    const cGlobal = embedding(empty ? concat([local, Tensor.zeros([1, H])], 0) : local, lastRows);
    const q = embedding(this.aGlobal.forward(cGlobal), rowSeq);
    const scores = this.vVector.forward(hardSigmoid(add(q, this.aLocal.forward(local))));
    const cLocal = attentionPool(scores, local, offsets);
    return this.projDropout.forward(concat([cGlobal, cLocal], 1));
  }

  /** Item representations B·E [numItems + 1, 4d]. */
  private itemMatrix(): Tensor {
    return this.bVector.forward(this.token.weight);
  }

  lossAndBackward(batch: SequenceBatch): number {
    clearTape();
    const { batchSize: B, seqLen: L } = batch;
    const labels = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < L - 1; t++)
        if (batch.labels[b * L + t] !== 0)
          throw new RangeError(
            "narm: only the last position may be labelled (use the model's trainingBatches)",
          );
      labels[b] = batch.labels[(b + 1) * L - 1]!;
    }
    return withArena(this.arena, () => {
      const state = this.sessionState(batch.tokens, B, L);
      const loss = linearCrossEntropy(state, this.itemMatrix(), null, labels, 0);
      backward(loss);
      return loss.item();
    });
  }

  scoreNext(tokens: Int32Array, batchSize: number, seqLen: number): Float32Array {
    const wasTraining = this.training;
    this.eval();
    try {
      return noGrad(
        () => matmul(this.sessionState(tokens, batchSize, seqLen), this.itemMatrix(), { transB: true }).data,
      );
    } finally {
      this.train(wasTraining);
    }
  }

  /**
   * The authors' RNN training samples: for every user (ascending) every prefix history[:i], i = 1…n−1, labelled
   * history[i]; the last maxLen items of the prefix, left-padded, label at the last position. Shuffled per
   * epoch from (seed, epoch) only, so nothing needs checkpointing.
   */
  trainingBatches(train: readonly (readonly number[])[], opts: BatchSourceOptions): BatchSource {
    const user: number[] = [];
    const end: number[] = [];
    for (let u = 1; u < train.length; u++) {
      const n = train[u]?.length ?? 0;
      for (let i = n - 1; i >= 1; i--) {
        user.push(u);
        end.push(i);
      }
    }
    if (user.length === 0) throw new RangeError("narm: no training prefixes (every history has < 2 items)");
    const { batchSize, maxLen, seed } = opts;
    let cachedEpoch = -1;
    let order: Uint32Array = new Uint32Array(0);
    return {
      batchesPerEpoch: Math.ceil(user.length / batchSize),
      batch: (epoch, index) => {
        if (epoch !== cachedEpoch) {
          order = epochOrder(user.length, seed, epoch);
          cachedEpoch = epoch;
        }
        const from = index * batchSize;
        const to = Math.min(from + batchSize, user.length);
        const B = to - from;
        const tokens = new Int32Array(B * maxLen);
        const labels = new Int32Array(B * maxLen);
        for (let r = 0; r < B; r++) {
          const k = order[from + r]!;
          const seq = train[user[k]!]!;
          encodeEvaluationRow(seq.slice(0, end[k]!), maxLen, tokens, r);
          labels[(r + 1) * maxLen - 1] = seq[end[k]!]!;
        }
        return { batchSize: B, seqLen: maxLen, tokens, labels };
      },
    };
  }
}

export const narmEntry: RetrieverEntry<typeof narmOptions> = {
  name: "narm",
  description: "NARM: GRU with global and attentive local session states (Li et al. 2017), authors' baseline",
  schema: narmOptions,
  create: (config) => new Narm(config),
};
