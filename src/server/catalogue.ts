/**
 * What the server knows about items and users from the run's dataset: raw ids ↔ the model's dense ids,
 * titles, each known user's history (the whole leave-one-out sequence: train, validation and test items),
 * and item popularity for users without history.
 *
 * Stored compactly, in typed arrays only (ids and titles as UTF-8 in a StringTable, histories packed in one
 * Int32Array), and nothing of the source is kept: at a million items the catalogue adds no JS objects for
 * V8's major GC to mark (a string per id and title and a Map over the ids did: 99–118 ms pauses).
 */
import type { Dataset } from "../data/dataset.js";
import { StringTable } from "./string-table.js";

/** Where a Catalogue is read from (once, in the constructor). Dense items are 1..numItems, users 1..numUsers. */
export interface CatalogueSource {
  numItems: number;
  /** Raw id of dense item i. */
  itemId(i: number): string;
  /** Title of dense item i. */
  title(i: number): string;
  numUsers: number;
  /** Raw id of dense user u. */
  userId(u: number): string;
  /** Dense items of dense user u, oldest first. */
  history(u: number): readonly number[];
  /** popularity[i] for i in 0..numItems; default: interactions of each item in the users' histories. */
  popularity?: Float32Array;
}

export class Catalogue {
  readonly numItems: number;
  /** Raw ids of items 0..numItems ([0] = ""), indexed. */
  private readonly itemIds: StringTable;
  /** Titles of items 0..numItems ([0] = ""). */
  private readonly titles: StringTable;
  /** Raw ids of users 0..numUsers ([0] = ""), indexed. */
  private readonly userIds: StringTable;
  /** User u's history is historyItems[historyStart[u] .. historyStart[u + 1]). */
  private readonly historyStart: Uint32Array;
  private readonly historyItems: Int32Array;
  /** Dense item ids, most popular first (interactions in the dataset, ties by id). */
  readonly popular: Int32Array;
  /** popularity[i]: interactions of item i in the dataset. */
  readonly popularity: Float32Array;

  constructor(source: CatalogueSource) {
    const { numItems, numUsers } = source;
    this.numItems = numItems;
    this.itemIds = new StringTable(numItems + 1, (i) => (i === 0 ? "" : source.itemId(i)), { index: true });
    this.titles = new StringTable(numItems + 1, (i) => (i === 0 ? "" : source.title(i)));
    this.userIds = new StringTable(numUsers + 1, (u) => (u === 0 ? "" : source.userId(u)), { index: true });
    this.historyStart = new Uint32Array(numUsers + 2);
    let total = 0;
    for (let u = 1; u <= numUsers; u++) {
      total += source.history(u).length;
      this.historyStart[u + 1] = total;
    }
    this.historyItems = new Int32Array(total);
    for (let u = 1; u <= numUsers; u++) this.historyItems.set(source.history(u), this.historyStart[u]!);
    let popularity = source.popularity;
    if (!popularity) {
      popularity = new Float32Array(numItems + 1);
      for (const i of this.historyItems) popularity[i]! += 1;
    }
    this.popularity = popularity;
    const order = new Int32Array(numItems);
    for (let i = 0; i < numItems; i++) order[i] = i + 1;
    const p = popularity;
    order.sort((a, b) => p[b]! - p[a]! || a - b);
    this.popular = order;
  }

  static fromDataset(dataset: Dataset): Catalogue {
    // The closures read the dataset only during construction; the catalogue keeps none of it.
    return new Catalogue({
      numItems: dataset.numItems,
      itemId: (i) => dataset.itemIds[i]!,
      title: (i) => dataset.titles[i] ?? "",
      numUsers: Math.max(0, dataset.userIds.length - 1),
      userId: (u) => dataset.userIds[u]!,
      history: (u) => {
        const seq = [...(dataset.train[u] ?? [])];
        if (dataset.val[u]) seq.push(dataset.val[u]!);
        if (dataset.test[u]) seq.push(dataset.test[u]!);
        return seq;
      },
    });
  }

  /** Dense id of a raw item id, or 0 when the model does not know it. */
  item(rawId: string): number {
    const i = this.itemIds.indexOf(rawId);
    return Math.max(i, 0);
  }

  /** Raw id of dense item i (1..numItems). */
  itemId(i: number): string {
    return this.itemIds.get(i);
  }

  /** Title of dense item i; "" outside 1..numItems. */
  title(i: number): string {
    return i > 0 && i <= this.numItems ? this.titles.get(i) : "";
  }

  /** The dataset history of a raw user id (dense items, oldest first); empty for users it does not know. */
  knownHistory(rawUserId: string): readonly number[] {
    const u = this.userIds.indexOf(rawUserId);
    if (u <= 0) return [];
    return Array.from(this.historyItems.subarray(this.historyStart[u]!, this.historyStart[u + 1]!));
  }
}
