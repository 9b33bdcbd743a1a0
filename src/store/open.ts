/** `--store sqlite:<file>` | `postgres://…` (or `postgresql://…`) → an EventStore. */
import { InputError } from "../util/errors.js";
import type { EventStore } from "./types.js";

export async function openStore(spec: string): Promise<EventStore> {
  if (spec.startsWith("sqlite:")) {
    const file = spec.slice("sqlite:".length);
    if (!file) throw new InputError("--store sqlite:<file>: the file name is missing");
    const { SqliteEventStore } = await import("./sqlite.js");
    return new SqliteEventStore(file);
  }
  if (spec.startsWith("postgres://") || spec.startsWith("postgresql://")) {
    const { PostgresEventStore } = await import("./postgres.js");
    return PostgresEventStore.open(spec);
  }
  throw new InputError(`--store must be sqlite:<file> or postgres://…, got "${spec}"`);
}
