/**
 * Incremental LRURec user state for serving: one more event costs one position of the network, not a pass
 * over the whole history.
 *
 * What is exact. Each LRU block is  h_t = λ·h_{t−1} + B·x_t  (diagonal complex recurrence over positions),
 * followed by position-wise maps only: y_t = LN(Re(C·h_t) + x_t), then the feed-forward + LN. So the input
 * of block l+1 at position t depends on block l's output at position t alone, and the output at the last
 * position t needs from the past only h^l_{t−1} of every block l. The state of a user is therefore, per
 * block, the recurrent vector h^l of the last position (2C = 4d floats), plus the last position's final
 * hidden vector (d floats) that scores the items. Appending an item runs the embedding, then per block one
 * O(d²) projection of the new position and the O(d) recurrence update — independent of the history length.
 * This equals the full forward pass over the same history (`LruRec.scoreNext` on the whole sequence) up to
 * float rounding: the recurrence is evaluated in the same order as the model's sequential scan.
 *
 * The state covers the whole history. The model was trained on windows of `maxLen` items; a full recompute
 * of a history longer than that window with the window applied would differ (the recurrence decays as
 * |λ|^t but is never cut), so serving defines a user's state as the unwindowed recurrence.
 *
 * Building a state from a stored history (cache miss, restart) runs the batched layers once over the
 * history (GEMMs for the projections, the sequential scan for the recurrence) and keeps the last rows.
 */
import { add } from "../tensor/ops/elementwise.js";
import { linearRecurrenceScan, type ScanLayout } from "../tensor/ops/linear_recurrence.js";
import { matmul } from "../tensor/ops/matmul.js";
import { noGrad } from "../tensor/tape.js";
import { Tensor } from "../tensor/tensor.js";
import { CatalogueScorer } from "./catalogue-scorer.js";
import type { LruRec } from "./lru.js";

export interface LruUserState {
  /** Model items folded into the state. */
  readonly length: number;
  /** Per block: the recurrent state of the last position, packed [re(0..C) | im(0..C)]. */
  readonly recurrent: readonly Float32Array[];
  /** Final hidden vector of the last position [d]: what scores the next item. */
  readonly output: Float32Array;
}

interface BlockConstants {
  lambda: Float32Array;
  gamma: Tensor;
  lambdaTensor: Tensor;
}

/** One left-aligned sequence of n real items (the model pads to a power of two; padding never propagates). */
function singleSequence(n: number): ScanLayout {
  return {
    rowStart: Int32Array.of(0),
    length: Int32Array.of(n),
    paddedLength: 2 ** Math.ceil(Math.log2(Math.max(1, n))),
    mask: new Uint8Array(n).fill(1),
  };
}

export class LruIncremental {
  readonly hiddenDim: number;
  readonly numItems: number;
  private readonly blocks: BlockConstants[];
  private scorer: CatalogueScorer | null = null;

  constructor(readonly model: LruRec) {
    this.hiddenDim = model.config.hiddenDim;
    this.numItems = model.numItems;
    model.setTraining(false);
    this.blocks = noGrad(() =>
      model.model.blocks.items.map((b) => {
        const { lambda, gamma } = b.lruLayer.lambdaAndGamma();
        return { lambda: lambda.data.slice(), gamma, lambdaTensor: lambda };
      }),
    );
  }

  /** The state of a user with no history (scores are undefined: callers fall back to popularity). */
  empty(): LruUserState {
    return {
      length: 0,
      recurrent: this.blocks.map((b) => new Float32Array(b.lambda.length)),
      output: new Float32Array(this.hiddenDim),
    };
  }

  private checkItem(item: number): void {
    if (!(Number.isInteger(item) && item >= 1 && item <= this.numItems))
      throw new RangeError(`lru state: item ${item} outside 1..${this.numItems}`);
  }

  /** The state after a whole history (oldest first), batched over its positions. */
  fromHistory(items: ArrayLike<number>): LruUserState {
    const n = items.length;
    if (n === 0) return this.empty();
    const ids = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      this.checkItem(items[i]!);
      ids[i] = items[i]!;
    }
    return noGrad(() => {
      const layout = singleSequence(n);
      let x = this.model.embedding.forward(ids);
      const recurrent: Float32Array[] = [];
      this.model.model.blocks.items.forEach((block, l) => {
        const layer = block.lruLayer;
        const c = this.blocks[l]!;
        const bu = layer.inProj.forwardFromReal(x, c.gamma);
        const h = linearRecurrenceScan(bu, c.lambdaTensor, layout);
        const width = c.lambda.length;
        recurrent.push(h.data.slice((n - 1) * width, n * width));
        const y = layer.dropout.forward(layer.outProj.forwardRealPart(h));
        x = block.feedForward.forward(layer.layerNorm.forward(add(y, x)));
      });
      const d = this.hiddenDim;
      return { length: n, recurrent, output: x.data.slice((n - 1) * d, n * d) };
    });
  }

  /** The state after one more item: one position through the network, O(d²) per block. */
  step(state: LruUserState, item: number): LruUserState {
    this.checkItem(item);
    return noGrad(() => {
      let x = this.model.embedding.forward(Int32Array.of(item));
      const recurrent: Float32Array[] = [];
      this.model.model.blocks.items.forEach((block, l) => {
        const layer = block.lruLayer;
        const c = this.blocks[l]!;
        const bu = layer.inProj.forwardFromReal(x, c.gamma);
        const h = bu.data;
        if (state.length > 0) {
          // h_t = b_t + λ·h_{t−1}, complex, in the order of the model's sequential scan.
          const prev = state.recurrent[l]!;
          const C = c.lambda.length >> 1;
          const lam = c.lambda;
          for (let k = 0; k < C; k++) {
            const lr = lam[k]!;
            const li = lam[C + k]!;
            const xr = prev[k]!;
            const xi = prev[C + k]!;
            h[k] = h[k]! + (lr * xr - li * xi);
            h[C + k] = h[C + k]! + (lr * xi + li * xr);
          }
        }
        recurrent.push(h.slice());
        const y = layer.dropout.forward(layer.outProj.forwardRealPart(bu));
        x = block.feedForward.forward(layer.layerNorm.forward(add(y, x)));
      });
      return { length: state.length + 1, recurrent, output: x.data.slice() };
    });
  }

  /** The state after several more items, one step each. */
  extend(state: LruUserState, items: ArrayLike<number>): LruUserState {
    let s = state;
    for (let i = 0; i < items.length; i++) s = this.step(s, items[i]!);
    return s;
  }

  /** The item table in a SIMD scorer that keeps it in place (built on first use: it copies the table). */
  catalogueScorer(): CatalogueScorer {
    this.scorer ??= new CatalogueScorer(
      this.model.embedding.token.weight.data,
      this.model.model.bias.data,
      this.numItems + 1,
      this.hiddenDim,
    );
    return this.scorer;
  }

  /**
   * The `k` best items for one state outside `excluded`, best first: exactly `topItems(scores([state]), k,
   * excluded)`, without materialising the scores on large catalogues (CatalogueScorer.top).
   */
  top(state: LruUserState, k: number, excluded: ReadonlySet<number>): { items: number[]; scores: number[] } {
    return this.catalogueScorer().top(state.output, k, excluded);
  }

  /**
   * Scores of every item (index 0 = padding) for each state: [states.length × (numItems + 1)] =
   * hidden · Eᵀ + bias, the model's own last-position scoring. One state (a request): the SIMD catalogue
   * scorer, which keeps the item table in place; several: one GEMM.
   */
  scores(states: readonly LruUserState[]): Float32Array {
    if (states.length === 1) return this.catalogueScorer().score(states[0]!.output).slice();
    const d = this.hiddenDim;
    const hidden = new Float32Array(states.length * d);
    states.forEach((s, i) => {
      hidden.set(s.output, i * d);
    });
    return noGrad(() => {
      const s = matmul(new Tensor(hidden, [states.length, d]), this.model.embedding.token.weight, {
        transB: true,
      });
      return add(s, this.model.model.bias).data;
    });
  }
}
