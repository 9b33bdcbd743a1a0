/**
 * Users' incremental states, a bounded in-memory cache in front of the event store.
 *
 * An entry records how many of the user's stored events it has applied (`applied`: store positions are
 * gapless per user). Reading a user asks the store only for the events after that, so several server
 * processes sharing one PostgreSQL store stay consistent: an event another process accepted is applied on
 * the next read. On a miss (first read, eviction, restart) the state is rebuilt in one batched pass over
 * the dataset history plus every stored event. Items the model does not know are counted as applied but
 * leave the state unchanged.
 */
import type { EventStore, StoredEvent } from "../store/types.js";
import type { Catalogue } from "./catalogue.js";
import type { StateModel } from "./user-state.js";

export interface UserEntry {
  readonly userId: string;
  readonly state: unknown;
  /** Store positions applied (the user's first `applied` stored events). */
  readonly applied: number;
  /** Model items in the state (dataset history + known stored items). */
  readonly length: number;
  /** Every model item the user has had (for excluding seen items). */
  readonly seen: ReadonlySet<number>;
  /** The most recent model items, oldest first (for the ranking prompt). */
  readonly recent: readonly number[];
}

export interface UserStatesOptions {
  /** Users kept in memory (least recently used evicted). Default 100,000. */
  capacity?: number;
  /** Recent items kept per user for prompts. Default 20. */
  recent?: number;
  onLookup?: (result: "hit" | "catchup" | "miss") => void;
}

export class UserStates {
  private readonly cache = new Map<string, UserEntry>();
  private readonly capacity: number;
  private readonly keepRecent: number;

  constructor(
    private readonly catalogue: Catalogue,
    private readonly model: StateModel,
    private readonly store: EventStore,
    private readonly options: UserStatesOptions = {},
  ) {
    this.capacity = options.capacity ?? 100_000;
    this.keepRecent = options.recent ?? 20;
  }

  get size(): number {
    return this.cache.size;
  }

  /** The user's up-to-date entry: cached state plus any events stored since. */
  async get(userId: string): Promise<UserEntry> {
    const cached = this.cache.get(userId);
    const fresh = await this.store.events(userId, cached?.applied ?? 0);
    // Another request may have updated the entry while we waited for the store.
    let base = this.cache.get(userId) ?? null;
    let result: "hit" | "catchup" | "miss" = "hit";
    if (!base) {
      result = "miss";
      base = this.build(userId, fresh);
    } else {
      const newer = fresh.filter((e) => e.position > base!.applied);
      if (newer.length > 0) {
        result = "catchup";
        base = this.apply(base, newer);
      }
    }
    this.options.onLookup?.(result);
    this.remember(base);
    return base;
  }

  /** Called after events were stored: updates a cached state that these events directly continue. */
  afterAppend(userId: string, stored: readonly StoredEvent[]): void {
    const cached = this.cache.get(userId);
    if (!cached || stored.length === 0 || stored[0]!.position !== cached.applied + 1) return;
    this.remember(this.apply(cached, stored));
  }

  /** Forgets every cached state (tests, or after a model reload). */
  clear(): void {
    this.cache.clear();
  }

  private build(userId: string, events: readonly StoredEvent[]): UserEntry {
    const items = [...this.catalogue.knownHistory(userId)];
    for (const e of events) {
      const i = this.catalogue.item(e.itemId);
      if (i > 0) items.push(i);
    }
    return {
      userId,
      state: this.model.fromHistory(items),
      applied: events.length === 0 ? 0 : events[events.length - 1]!.position,
      length: items.length,
      seen: new Set(items),
      recent: items.slice(-this.keepRecent),
    };
  }

  private apply(entry: UserEntry, events: readonly StoredEvent[]): UserEntry {
    let state = entry.state;
    let length = entry.length;
    let applied = entry.applied;
    // Shared with the previous entry: a set only grows, and entries never go back (see remember).
    const seen = entry.seen as Set<number>;
    const recent = [...entry.recent];
    for (const e of events) {
      if (e.position !== applied + 1)
        throw new Error(
          `user ${entry.userId}: event position ${e.position} after ${applied} (gap in the store)`,
        );
      applied = e.position;
      const i = this.catalogue.item(e.itemId);
      if (i === 0) continue;
      state = this.model.step(state, i);
      length++;
      seen.add(i);
      recent.push(i);
    }
    return {
      userId: entry.userId,
      state,
      applied,
      length,
      seen,
      recent: recent.slice(-this.keepRecent),
    };
  }

  private remember(entry: UserEntry): void {
    const current = this.cache.get(entry.userId);
    if (current && current.applied > entry.applied) return; // never go back
    this.cache.delete(entry.userId);
    this.cache.set(entry.userId, entry);
    while (this.cache.size > this.capacity) {
      const oldest = this.cache.keys().next().value as string;
      this.cache.delete(oldest);
    }
  }
}
