import { RowError } from "../util/errors.js";

/** One interaction as it appears in a source file, before any filtering or re-indexing. */
export interface RawInteraction {
  user: string;
  item: string;
  /** Seconds since the epoch in all bundled readers (any monotone number works: only the order matters). */
  timestamp: number;
  rating?: number;
}

/**
 * A growable, columnar store of raw interactions: user and item ids are interned to small integers and the
 * numeric columns live in typed arrays, so tens of millions of rows fit in memory (ml-25m: ~0.5 GB).
 */
export class InteractionLog {
  readonly userKeys: string[] = [];
  readonly itemKeys: string[] = [];
  private readonly userIndex = new Map<string, number>();
  private readonly itemIndex = new Map<string, number>();
  private cap: number;
  private n = 0;
  users: Int32Array;
  items: Int32Array;
  timestamps: Float64Array;
  /** NaN where the row had no rating. */
  ratings: Float32Array;

  constructor(initialCapacity = 1024) {
    this.cap = Math.max(16, initialCapacity);
    this.users = new Int32Array(this.cap);
    this.items = new Int32Array(this.cap);
    this.timestamps = new Float64Array(this.cap);
    this.ratings = new Float32Array(this.cap);
  }

  static from(rows: Iterable<RawInteraction>): InteractionLog {
    const log = new InteractionLog();
    for (const r of rows) log.add(r.user, r.item, r.timestamp, r.rating);
    return log;
  }

  get size(): number {
    return this.n;
  }

  add(user: string, item: string, timestamp: number, rating?: number): void {
    if (this.n === this.cap) this.grow();
    let u = this.userIndex.get(user);
    if (u === undefined) {
      u = this.userKeys.length;
      this.userKeys.push(user);
      this.userIndex.set(user, u);
    }
    let i = this.itemIndex.get(item);
    if (i === undefined) {
      i = this.itemKeys.length;
      this.itemKeys.push(item);
      this.itemIndex.set(item, i);
    }
    const k = this.n++;
    this.users[k] = u;
    this.items[k] = i;
    this.timestamps[k] = timestamp;
    this.ratings[k] = rating === undefined ? Number.NaN : rating;
  }

  get(k: number): RawInteraction {
    const r: RawInteraction = {
      user: this.userKeys[this.users[k]!]!,
      item: this.itemKeys[this.items[k]!]!,
      timestamp: this.timestamps[k]!,
    };
    const rating = this.ratings[k]!;
    if (!Number.isNaN(rating)) r.rating = rating;
    return r;
  }

  *[Symbol.iterator](): IterableIterator<RawInteraction> {
    for (let k = 0; k < this.n; k++) yield this.get(k);
  }

  private grow(): void {
    this.cap *= 2;
    const u = new Int32Array(this.cap);
    u.set(this.users);
    this.users = u;
    const i = new Int32Array(this.cap);
    i.set(this.items);
    this.items = i;
    const t = new Float64Array(this.cap);
    t.set(this.timestamps);
    this.timestamps = t;
    const r = new Float32Array(this.cap);
    r.set(this.ratings);
    this.ratings = r;
  }
}

/** What a reader produces: interactions plus item id -> title (raw, as in the files, cleaned per source). */
export interface RawData {
  interactions: InteractionLog | readonly RawInteraction[];
  titles: ReadonlyMap<string, string>;
}

/** Counts of malformed rows, by reason, plus the first few messages ("file:line: reason"). */
export interface ReadReport {
  rowsRead: number;
  skippedRows: number;
  skippedByReason: Record<string, number>;
  /** Up to 20 examples of skipped rows, "file:line: reason". */
  skippedExamples: string[];
  sourceFiles: string[];
}

/**
 * Shared by all readers: counts rows, and for a malformed row either throws a RowError (strict) or
 * records it and lets the reader skip it.
 */
export class RowContext {
  readonly report: ReadReport = {
    rowsRead: 0,
    skippedRows: 0,
    skippedByReason: {},
    skippedExamples: [],
    sourceFiles: [],
  };

  constructor(readonly strict = false) {}

  addSource(path: string): void {
    if (!this.report.sourceFiles.includes(path)) this.report.sourceFiles.push(path);
  }

  /**
   * Reports a malformed row. `reason` is a short category (counted); `detail` adds specifics to the message.
   * Throws RowError in strict mode.
   */
  skip(file: string, line: number, reason: string, detail?: string): void {
    const message = detail ? `${reason}: ${detail}` : reason;
    if (this.strict) throw new RowError(file, line, message);
    this.report.skippedRows++;
    this.report.skippedByReason[reason] = (this.report.skippedByReason[reason] ?? 0) + 1;
    if (this.report.skippedExamples.length < 20)
      this.report.skippedExamples.push(`${file}:${line}: ${message}`);
  }
}

/** Parses a numeric field; undefined when it is not a finite number. */
export function parseNumber(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const t = s.trim();
  if (t === "") return undefined;
  const v = Number(t);
  return Number.isFinite(v) ? v : undefined;
}
