/**
 * SQLite event store (better-sqlite3): one file, WAL journal, synchronous=FULL so a committed append is
 * on disk before `append` resolves. One server process per file (SQLite serialises writers; positions
 * are assigned inside the write transaction, so they stay gapless).
 */
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import Database from "better-sqlite3";
import { InputError } from "../util/errors.js";
import { type EventInput, type EventStore, groupByUser, type StoredEvent } from "./types.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  user_id   TEXT    NOT NULL,
  position  INTEGER NOT NULL,
  item_id   TEXT    NOT NULL,
  ts        INTEGER NOT NULL,
  PRIMARY KEY (user_id, position)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS llamarec_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO llamarec_meta (key, value) VALUES ('event_schema', '1');
`;

interface Row {
  user_id: string;
  position: number;
  item_id: string;
  ts: number;
}

export class SqliteEventStore implements EventStore {
  readonly kind = "sqlite";
  private readonly db: Database.Database;
  private readonly lastPosition: Database.Statement<[string], { p: number | null }>;
  private readonly insert: Database.Statement<[string, number, string, number]>;
  private readonly select: Database.Statement<[string, number], Row>;
  private readonly countAll: Database.Statement<[], { n: number }>;
  private readonly appendTx: Database.Transaction<(events: readonly EventInput[]) => StoredEvent[]>;
  private closed = false;
  private pending: {
    events: readonly EventInput[];
    resolve: (stored: StoredEvent[]) => void;
    reject: (err: Error) => void;
  }[] = [];

  constructor(readonly location: string) {
    const path = resolve(location);
    try {
      mkdirSync(dirname(path), { recursive: true });
      this.db = new Database(path);
      this.db.pragma("journal_mode = WAL");
      this.db.pragma("synchronous = FULL");
      this.db.pragma("busy_timeout = 5000");
      this.db.exec(SCHEMA);
    } catch (err) {
      throw new InputError(`--store sqlite:${location}: cannot open (${(err as Error).message})`);
    }
    const version = this.db.prepare("SELECT value FROM llamarec_meta WHERE key = 'event_schema'").get() as
      | { value: string }
      | undefined;
    if (version?.value !== "1")
      throw new InputError(`${location}: event schema ${version?.value} is not the supported version 1`);
    this.lastPosition = this.db.prepare("SELECT max(position) AS p FROM events WHERE user_id = ?");
    this.insert = this.db.prepare("INSERT INTO events (user_id, position, item_id, ts) VALUES (?, ?, ?, ?)");
    this.select = this.db.prepare(
      "SELECT user_id, position, item_id, ts FROM events WHERE user_id = ? AND position > ? ORDER BY position",
    );
    this.countAll = this.db.prepare("SELECT count(*) AS n FROM events");
    this.appendTx = this.db.transaction((events: readonly EventInput[]) => {
      const out: StoredEvent[] = new Array(events.length);
      for (const [userId, indices] of groupByUser(events)) {
        let position = this.lastPosition.get(userId)?.p ?? 0;
        for (const i of indices) {
          const e = events[i]!;
          position++;
          this.insert.run(userId, position, e.itemId, Math.round(e.timestamp));
          out[i] = { userId, itemId: e.itemId, timestamp: Math.round(e.timestamp), position };
        }
      }
      return out;
    });
  }

  /**
   * Group commit: appends that arrive while the event loop is busy are written in one transaction (one
   * fsync) on the next turn; each caller's promise resolves only after that commit is on disk.
   */
  append(events: readonly EventInput[]): Promise<StoredEvent[]> {
    this.checkOpen();
    if (events.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.pending.push({ events, resolve, reject });
      if (this.pending.length === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    const all = batch.flatMap((p) => p.events);
    let stored: StoredEvent[];
    try {
      // BEGIN IMMEDIATE … COMMIT; with synchronous=FULL the commit is flushed before this returns.
      stored = this.appendTx.immediate(all);
    } catch (err) {
      for (const p of batch) p.reject(err as Error);
      return;
    }
    let offset = 0;
    for (const p of batch) {
      p.resolve(stored.slice(offset, offset + p.events.length));
      offset += p.events.length;
    }
  }

  async events(userId: string, after = 0): Promise<StoredEvent[]> {
    this.checkOpen();
    return this.select.all(userId, after).map((r) => ({
      userId: r.user_id,
      itemId: r.item_id,
      timestamp: r.ts,
      position: r.position,
    }));
  }

  async count(): Promise<number> {
    this.checkOpen();
    return this.countAll.get()!.n;
  }

  async ping(): Promise<void> {
    this.checkOpen();
    this.db.prepare("SELECT 1").get();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flush(); // appends already accepted are committed, not dropped
    this.closed = true;
    this.db.close();
  }

  private checkOpen(): void {
    if (this.closed) throw new Error("event store is closed");
  }
}
