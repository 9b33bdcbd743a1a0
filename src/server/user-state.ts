/**
 * How the server turns a history into item scores. LRURec keeps an exact incremental state
 * (src/retrievers/lru-state.ts): one event is one position through the network. Other retrievers keep the
 * history itself and score its last `maxLen` items with a full forward pass.
 */
import type { LruRec } from "../retrievers/lru.js";
import { LruIncremental } from "../retrievers/lru-state.js";
import type { SequentialRetriever } from "../retrievers/types.js";

export interface StateModel<S = unknown> {
  readonly numItems: number;
  /** True when `step` costs O(1) in the history length. */
  readonly incremental: boolean;
  empty(): S;
  fromHistory(items: readonly number[]): S;
  step(state: S, item: number): S;
  /** Scores [states × (numItems + 1)], index 0 = padding. */
  scores(states: readonly S[]): Float32Array;
  /** When present: exactly `topItems(scores([state]), k, excluded)`, faster. */
  top?(state: S, k: number, excluded: ReadonlySet<number>): { items: number[]; scores: number[] };
}

export function lruStateModel(model: LruRec): StateModel {
  const inc = new LruIncremental(model);
  return {
    numItems: model.numItems,
    incremental: true,
    empty: () => inc.empty(),
    fromHistory: (items) => inc.fromHistory(items),
    step: (s, item) => inc.step(s as ReturnType<LruIncremental["empty"]>, item),
    scores: (states) => inc.scores(states as ReturnType<LruIncremental["empty"]>[]),
    top: (s, k, excluded) => inc.top(s as ReturnType<LruIncremental["empty"]>, k, excluded),
  };
}

/** Any retriever: the state is the last `maxLen` items, scored by a full forward pass. */
export function windowStateModel(model: SequentialRetriever, maxLen: number): StateModel {
  type W = readonly number[];
  return {
    numItems: model.numItems,
    incremental: false,
    empty: () => [],
    fromHistory: (items) => items.slice(-maxLen),
    step: (s, item) => [...(s as W), item].slice(-maxLen),
    scores(states) {
      const len = Math.max(1, ...states.map((s) => (s as W).length));
      const tokens = new Int32Array(states.length * len);
      states.forEach((s, b) => {
        const w = s as W;
        tokens.set(w, b * len + len - w.length);
      });
      return model.scoreNext(tokens, states.length, len);
    },
  };
}

export function stateModelFor(model: SequentialRetriever, maxLen: number): StateModel {
  return model.modelName === "lru" ? lruStateModel(model as LruRec) : windowStateModel(model, maxLen);
}
