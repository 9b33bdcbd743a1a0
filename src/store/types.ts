/**
 * The durable event store behind `llamarec serve`: what users did, in the order the server accepted it.
 * Every implementation (SQLite for one process, PostgreSQL for several processes behind a load balancer)
 * has the same contract, checked by the same test suite:
 *
 * - `append` resolves only after the events are durable (committed and flushed), so a 2xx answer means
 *   the events survive a crash of the process or the machine.
 * - Each user's events get consecutive positions 1, 2, 3, … in commit order, without gaps, even when
 *   several processes append for the same user at once. A reader that has applied the first n events of
 *   a user can therefore ask for exactly the ones after n.
 * - Item ids are stored as given, whether or not a model knows them.
 */

export interface EventInput {
  readonly userId: string;
  readonly itemId: string;
  /** Milliseconds since the Unix epoch (the client's timestamp, or the time the server received it). */
  readonly timestamp: number;
}

export interface StoredEvent extends EventInput {
  /** 1-based position of the event in its user's stored events. */
  readonly position: number;
}

export interface EventStore {
  /** "sqlite" or "postgres". */
  readonly kind: string;
  /** Where it is (a file path or a connection string without its password). */
  readonly location: string;
  /** Stores the events in one transaction, durably; the result is in input order. */
  append(events: readonly EventInput[]): Promise<StoredEvent[]>;
  /** The user's events with position > `after` (default 0), in position order. */
  events(userId: string, after?: number): Promise<StoredEvent[]>;
  /** Number of stored events (all users). */
  count(): Promise<number>;
  /** Resolves when the store answers a trivial query. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Groups events by user, keeping each user's input order; users in first-appearance order. */
export function groupByUser(events: readonly EventInput[]): Map<string, number[]> {
  const byUser = new Map<string, number[]>();
  events.forEach((e, i) => {
    let list = byUser.get(e.userId);
    if (!list) {
      list = [];
      byUser.set(e.userId, list);
    }
    list.push(i);
  });
  return byUser;
}
