/**
 * What the server knows about items and users from the run's dataset: raw ids ↔ the model's dense ids,
 * titles, each known user's history (the whole leave-one-out sequence: train, validation and test items),
 * and item popularity for users without history.
 */
import type { Dataset } from "../data/dataset.js";

export class Catalogue {
  /** Raw item id → dense id (1..numItems). */
  private readonly itemIndex: Map<string, number>;
  /** Raw user id → dense user id. */
  private readonly userIndex: Map<string, number>;
  /** Dense item ids, most popular first (interactions in the dataset, ties by id). */
  readonly popular: Int32Array;
  /** popularity[i]: interactions of item i in the dataset. */
  readonly popularity: Float32Array;

  constructor(
    readonly numItems: number,
    /** itemIds[i]: the raw id of dense item i; [0] = "". */
    readonly itemIds: readonly string[],
    readonly titles: readonly string[],
    private readonly userIds: readonly string[],
    private readonly sequences: (user: number) => readonly number[],
    popularity?: Float32Array,
  ) {
    this.itemIndex = new Map();
    for (let i = 1; i <= numItems; i++) this.itemIndex.set(itemIds[i]!, i);
    this.userIndex = new Map();
    for (let u = 1; u < userIds.length; u++) this.userIndex.set(userIds[u]!, u);
    if (!popularity) {
      popularity = new Float32Array(numItems + 1);
      for (let u = 1; u < userIds.length; u++) for (const i of sequences(u)) popularity[i]! += 1;
    }
    this.popularity = popularity;
    const order = Array.from({ length: numItems }, (_, i) => i + 1);
    order.sort((a, b) => popularity![b]! - popularity![a]! || a - b);
    this.popular = Int32Array.from(order);
  }

  static fromDataset(dataset: Dataset): Catalogue {
    return new Catalogue(dataset.numItems, dataset.itemIds, dataset.titles, dataset.userIds, (u) => {
      const seq = [...(dataset.train[u] ?? [])];
      if (dataset.val[u]) seq.push(dataset.val[u]!);
      if (dataset.test[u]) seq.push(dataset.test[u]!);
      return seq;
    });
  }

  /** Dense id of a raw item id, or 0 when the model does not know it. */
  item(rawId: string): number {
    return this.itemIndex.get(rawId) ?? 0;
  }

  /** The dataset history of a raw user id (dense items, oldest first); empty for users it does not know. */
  knownHistory(rawUserId: string): readonly number[] {
    const u = this.userIndex.get(rawUserId);
    return u === undefined ? [] : this.sequences(u);
  }
}
