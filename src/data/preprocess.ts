import { InputError } from "../util/errors.js";
import type { Dataset, DatasetStats } from "./dataset.js";
import { InteractionLog, type RawData } from "./raw.js";

/**
 * Preprocessing, as in the paper and the official LlamaRec code (datasets/base.py, ml_100k.py, beauty.py):
 *   1. optional minimum rating (rows with rating >= minRating are kept; rows without a rating are dropped
 *      when a minimum is set). The official code defaults to min_rating = 0 for every dataset and in fact
 *      never applies it, so the default here is no rating filter;
 *   2. drop interactions with items that have no non-empty title;
 *   3. iterative k-core: drop items with < minItemCount interactions, then users with < minUserCount,
 *      repeated until both hold for everyone (interactions are rows: repeated user-item pairs count, as in
 *      the official code);
 *   4. dense ids from 1 (0 = padding) in a deterministic order: ascending raw id, compared as integers when
 *      every raw id of that kind is a non-negative integer ("2" < "10"), else by UTF-16 code units. (The
 *      official code enumerates a Python set, whose order is an implementation detail.)
 *   5. each user's items sorted by (timestamp, dense item id), stable;
 *   6. leave-one-out: last item = test, second-to-last = val, the rest = train.
 */
export interface PreprocessOptions {
  /** Dataset display name. */
  name?: string;
  /** Keep rows with rating >= minRating. Default: no rating filter (the official code's min_rating = 0). */
  minRating?: number;
  /** k-core threshold for users (default 5, at least 2: validation and test need one item each). */
  minUserCount?: number;
  /** k-core threshold for items (default 5). */
  minItemCount?: number;
}

/** Counts after each filter, for reports and error messages. */
export interface FilterStage {
  stage: "read" | "min-rating" | "title" | "k-core";
  interactions: number;
  users: number;
  items: number;
}

export interface PreprocessReport {
  stages: FilterStage[];
  /** Items referenced by interactions that had no (non-empty) title. */
  itemsWithoutTitle: number;
  /** Passes of the k-core loop until nothing changed. */
  kCoreIterations: number;
  minRating: number | null;
  minUserCount: number;
  minItemCount: number;
}

export interface PreprocessResult {
  dataset: Dataset;
  stats: DatasetStats;
  report: PreprocessReport;
}

function countDistinct(keys: Int32Array, keep: Uint8Array, n: number, size: number): number {
  const seen = new Uint8Array(size);
  let c = 0;
  for (let k = 0; k < n; k++) {
    if (keep[k] && !seen[keys[k]!]) {
      seen[keys[k]!] = 1;
      c++;
    }
  }
  return c;
}

/** Compares raw ids: integers numerically when `numeric`, else by code units; ties by code units. */
function idComparator(numeric: boolean): (a: string, b: string) => number {
  const lex = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  if (!numeric) return lex;
  return (a, b) => {
    const x = a.replace(/^0+(?=\d)/, "");
    const y = b.replace(/^0+(?=\d)/, "");
    if (x.length !== y.length) return x.length - y.length;
    return lex(x, y) || lex(a, b);
  };
}

function denseOrder(keys: readonly string[], used: Uint8Array): { order: string[]; dense: Int32Array } {
  const survivors: number[] = [];
  for (let i = 0; i < keys.length; i++) if (used[i]) survivors.push(i);
  const numeric = survivors.every((i) => /^\d+$/.test(keys[i]!));
  const cmp = idComparator(numeric);
  survivors.sort((a, b) => cmp(keys[a]!, keys[b]!));
  const dense = new Int32Array(keys.length);
  const order: string[] = [""];
  survivors.forEach((i, rank) => {
    dense[i] = rank + 1;
    order.push(keys[i]!);
  });
  return { order, dense };
}

export function computeStats(dataset: Dataset): DatasetStats {
  let interactions = 0;
  for (let u = 1; u <= dataset.numUsers; u++) {
    interactions += dataset.train[u]!.length + (dataset.val[u] ? 1 : 0) + (dataset.test[u] ? 1 : 0);
  }
  const users = dataset.numUsers;
  const items = dataset.numItems;
  return {
    users,
    items,
    interactions,
    avgLength: users > 0 ? interactions / users : 0,
    density: users > 0 && items > 0 ? interactions / (users * items) : 0,
  };
}

export function preprocess(raw: RawData, options: PreprocessOptions = {}): PreprocessResult {
  const minUserCount = options.minUserCount ?? 5;
  const minItemCount = options.minItemCount ?? 5;
  const minRating = options.minRating;
  if (!Number.isInteger(minUserCount) || minUserCount < 2) {
    throw new InputError(
      `minUserCount must be an integer >= 2 (validation and test need one item each), got ${minUserCount}`,
    );
  }
  if (!Number.isInteger(minItemCount) || minItemCount < 1) {
    throw new InputError(`minItemCount must be an integer >= 1, got ${minItemCount}`);
  }
  const log =
    raw.interactions instanceof InteractionLog ? raw.interactions : InteractionLog.from(raw.interactions);
  const n = log.size;
  const nu = log.userKeys.length;
  const ni = log.itemKeys.length;
  const keep = new Uint8Array(n).fill(1);
  const stages: FilterStage[] = [];
  const snapshot = (stage: FilterStage["stage"]): FilterStage => {
    let count = 0;
    for (let k = 0; k < n; k++) count += keep[k]!;
    const s = {
      stage,
      interactions: count,
      users: countDistinct(log.users, keep, n, nu),
      items: countDistinct(log.items, keep, n, ni),
    };
    stages.push(s);
    return s;
  };
  const before = (s: FilterStage): string =>
    `(before: ${s.interactions} interactions, ${s.users} users, ${s.items} items)`;

  let last = snapshot("read");
  if (last.interactions === 0) throw new InputError("no interactions were read from the input files");

  if (minRating !== undefined) {
    for (let k = 0; k < n; k++) {
      const r = log.ratings[k]!;
      if (!(r >= minRating)) keep[k] = 0; // NaN (no rating) fails too
    }
    const s = snapshot("min-rating");
    if (s.interactions === 0) {
      throw new InputError(
        `after the minimum-rating filter (rating >= ${minRating}) no interactions remain ${before(last)}`,
      );
    }
    last = s;
  }

  const hasTitle = new Uint8Array(ni);
  let itemsWithoutTitle = 0;
  {
    const referenced = new Uint8Array(ni);
    for (let k = 0; k < n; k++) if (keep[k]) referenced[log.items[k]!] = 1;
    for (let i = 0; i < ni; i++) {
      const t = raw.titles.get(log.itemKeys[i]!);
      hasTitle[i] = t !== undefined && t.trim() !== "" ? 1 : 0;
      if (referenced[i] && !hasTitle[i]) itemsWithoutTitle++;
    }
    for (let k = 0; k < n; k++) if (keep[k] && !hasTitle[log.items[k]!]) keep[k] = 0;
    const s = snapshot("title");
    if (s.interactions === 0) {
      throw new InputError(
        `after dropping items without a title no interactions remain ${before(last)}; ` +
          `${itemsWithoutTitle} items had no title — do the item ids of the interactions and the items file match?`,
      );
    }
    last = s;
  }

  // Iterative k-core (same fixed point as the official filter_triplets loop).
  const uc = new Int32Array(nu);
  const ic = new Int32Array(ni);
  let iterations = 0;
  for (;;) {
    iterations++;
    uc.fill(0);
    ic.fill(0);
    for (let k = 0; k < n; k++) {
      if (keep[k]) {
        uc[log.users[k]!]!++;
        ic[log.items[k]!]!++;
      }
    }
    let changed = false;
    // items first, then users on the updated counts, as in the official loop
    for (let k = 0; k < n; k++) {
      if (keep[k] && ic[log.items[k]!]! < minItemCount) {
        keep[k] = 0;
        uc[log.users[k]!]!--;
        changed = true;
      }
    }
    for (let k = 0; k < n; k++) {
      if (keep[k] && uc[log.users[k]!]! < minUserCount) {
        keep[k] = 0;
        changed = true;
      }
    }
    if (!changed) break;
  }
  const core = snapshot("k-core");
  if (core.users === 0) {
    throw new InputError(
      `after ${minUserCount}-core filtering (users >= ${minUserCount}, items >= ${minItemCount} interactions) ` +
        `no users remain (before: ${last.users} users, ${last.items} items, ${last.interactions} interactions)`,
    );
  }

  // Dense ids.
  const usedU = new Uint8Array(nu);
  const usedI = new Uint8Array(ni);
  for (let k = 0; k < n; k++) {
    if (keep[k]) {
      usedU[log.users[k]!] = 1;
      usedI[log.items[k]!] = 1;
    }
  }
  const U = denseOrder(log.userKeys, usedU);
  const I = denseOrder(log.itemKeys, usedI);
  const numUsers = U.order.length - 1;
  const numItems = I.order.length - 1;

  // Bucket rows by dense user (counting sort), then order each user's rows by (timestamp, dense item).
  const start = new Int32Array(numUsers + 2);
  for (let k = 0; k < n; k++) if (keep[k]) start[U.dense[log.users[k]!]! + 1]!++;
  for (let u = 1; u <= numUsers + 1; u++) start[u]! += start[u - 1]!;
  const rows = new Int32Array(core.interactions);
  const fill = start.slice();
  for (let k = 0; k < n; k++) if (keep[k]) rows[fill[U.dense[log.users[k]!]!]!++] = k;

  const train: number[][] = [[]];
  const val: number[] = [0];
  const test: number[] = [0];
  const ts = log.timestamps;
  for (let u = 1; u <= numUsers; u++) {
    const seq = Array.from(rows.subarray(start[u]!, start[u + 1]!));
    // row indices are ascending here, so a stable sort keeps file order for full ties
    seq.sort((a, b) => ts[a]! - ts[b]! || I.dense[log.items[a]!]! - I.dense[log.items[b]!]! || a - b);
    const items = seq.map((k) => I.dense[log.items[k]!]!);
    test.push(items.pop()!);
    val.push(items.pop()!);
    train.push(items);
  }

  const titles: string[] = [""];
  for (let d = 1; d <= numItems; d++) titles.push(raw.titles.get(I.order[d]!)!.trim());

  const dataset: Dataset = {
    name: options.name ?? "dataset",
    numUsers,
    numItems,
    train,
    val,
    test,
    titles,
    userIds: U.order,
    itemIds: I.order,
  };
  return {
    dataset,
    stats: computeStats(dataset),
    report: {
      stages,
      itemsWithoutTitle,
      kCoreIterations: iterations,
      minRating: minRating ?? null,
      minUserCount,
      minItemCount,
    },
  };
}
