/**
 * A prepared dataset: the contract between data/ and everything downstream (retrievers, eval, ranker).
 * Ids are dense: users 1..numUsers, items 1..numItems; 0 is padding everywhere.
 */
export interface Dataset {
  /** Display name, e.g. "ml-latest-small". */
  readonly name: string;
  readonly numUsers: number;
  readonly numItems: number;
  /** train[u]: the user's items in (timestamp, item id) order without the last two. train[0] = []. */
  readonly train: readonly (readonly number[])[];
  /** val[u]: the second-to-last item. val[0] = 0. */
  readonly val: readonly number[];
  /** test[u]: the last item. test[0] = 0. */
  readonly test: readonly number[];
  /** titles[i]: item i's cleaned title; titles[0] = "". */
  readonly titles: readonly string[];
  /** Raw ids as they appear in the source files; index 0 = "". */
  readonly userIds: readonly string[];
  readonly itemIds: readonly string[];
}

/** The paper's Table 2 columns. */
export interface DatasetStats {
  users: number;
  items: number;
  interactions: number;
  avgLength: number;
  density: number;
}
