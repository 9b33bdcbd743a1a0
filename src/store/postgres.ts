/**
 * PostgreSQL event store (pg): the scale-out store, shared by several server processes. An append is one
 * transaction that takes a per-user advisory lock (users in sorted order, so concurrent batches cannot
 * deadlock), reads the user's last position and inserts after it; the commit (synchronous_commit on, the
 * server default) is durable before `append` resolves. Positions therefore stay gapless per user and in
 * commit order across processes.
 */
import pg from "pg";
import { InputError } from "../util/errors.js";
import { type EventInput, type EventStore, groupByUser, type StoredEvent } from "./types.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  user_id   TEXT   NOT NULL,
  position  BIGINT NOT NULL,
  item_id   TEXT   NOT NULL,
  ts        BIGINT NOT NULL,
  PRIMARY KEY (user_id, position)
);
CREATE TABLE IF NOT EXISTS llamarec_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO llamarec_meta (key, value) VALUES ('event_schema', '1') ON CONFLICT (key) DO NOTHING;
`;

/** A fixed key for the schema-creation lock (several processes may start at once). */
const SCHEMA_LOCK = 0x6c6c7263;

export interface PostgresStoreOptions {
  /** Pool size (default 8). */
  maxConnections?: number;
}

/** The connection string with its password replaced, for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "postgres://…";
  }
}

export class PostgresEventStore implements EventStore {
  readonly kind = "postgres";
  readonly location: string;
  private closed = false;

  private constructor(
    private readonly pool: pg.Pool,
    url: string,
  ) {
    this.location = redactUrl(url);
  }

  static async open(url: string, options: PostgresStoreOptions = {}): Promise<PostgresEventStore> {
    const pool = new pg.Pool({ connectionString: url, max: options.maxConnections ?? 8 });
    // An idle client's network error must not crash the process; the next query reports it.
    pool.on("error", () => {});
    const store = new PostgresEventStore(pool, url);
    try {
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        await client.query("SELECT pg_advisory_xact_lock($1)", [SCHEMA_LOCK]);
        await client.query(SCHEMA);
        const v = await client.query<{ value: string }>(
          "SELECT value FROM llamarec_meta WHERE key = 'event_schema'",
        );
        await client.query("COMMIT");
        if (v.rows[0]?.value !== "1")
          throw new InputError(
            `${store.location}: event schema ${v.rows[0]?.value} is not the supported version 1`,
          );
      } catch (err) {
        await client.query("ROLLBACK").catch(() => {});
        throw err;
      } finally {
        client.release();
      }
    } catch (err) {
      await pool.end().catch(() => {});
      if (err instanceof InputError) throw err;
      throw new InputError(`--store ${store.location}: cannot connect (${(err as Error).message})`);
    }
    return store;
  }

  async append(events: readonly EventInput[]): Promise<StoredEvent[]> {
    this.checkOpen();
    if (events.length === 0) return [];
    const byUser = groupByUser(events);
    const users = [...byUser.keys()].sort();
    const out: StoredEvent[] = new Array(events.length);
    const client = await this.pool.connect();
    try {
      await client.query("BEGIN");
      for (const userId of users) {
        await client.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [userId]);
        const last = await client.query<{ p: string | null }>(
          "SELECT max(position) AS p FROM events WHERE user_id = $1",
          [userId],
        );
        let position = Number(last.rows[0]?.p ?? 0);
        const indices = byUser.get(userId)!;
        const positions: number[] = [];
        const items: string[] = [];
        const times: number[] = [];
        for (const i of indices) {
          const e = events[i]!;
          position++;
          positions.push(position);
          items.push(e.itemId);
          times.push(Math.round(e.timestamp));
          out[i] = { userId, itemId: e.itemId, timestamp: Math.round(e.timestamp), position };
        }
        await client.query(
          "INSERT INTO events (user_id, position, item_id, ts) SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::bigint[])",
          [userId, positions, items, times],
        );
      }
      await client.query("COMMIT");
      return out;
    } catch (err) {
      await client.query("ROLLBACK").catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  async events(userId: string, after = 0): Promise<StoredEvent[]> {
    this.checkOpen();
    const r = await this.pool.query<{ position: string; item_id: string; ts: string }>(
      "SELECT position, item_id, ts FROM events WHERE user_id = $1 AND position > $2 ORDER BY position",
      [userId, after],
    );
    return r.rows.map((row) => ({
      userId,
      itemId: row.item_id,
      timestamp: Number(row.ts),
      position: Number(row.position),
    }));
  }

  async count(): Promise<number> {
    this.checkOpen();
    const r = await this.pool.query<{ n: string }>("SELECT count(*) AS n FROM events");
    return Number(r.rows[0]!.n);
  }

  async ping(): Promise<void> {
    this.checkOpen();
    await this.pool.query("SELECT 1");
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  private checkOpen(): void {
    if (this.closed) throw new Error("event store is closed");
  }
}
