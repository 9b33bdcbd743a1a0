/**
 * Child process of `npm run bench -- serve`: the real HTTP server (createServer) over a synthetic
 * catalogue of --items items (default 1,000,000) with an LRURec of width --d (default 64), random weights,
 * SQLite store in --dir. Prints "listening on <url>" when ready; stops on SIGTERM. With --gc-compare it
 * only prints a Markdown line comparing full-GC time with the catalogue held, compact vs JS strings + Map.
 */
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { LruRec } from "../src/retrievers/lru.js";
import { createServer } from "../src/server/app.js";
import { Catalogue } from "../src/server/catalogue.js";
import { lruStateModel } from "../src/server/user-state.js";
import { SqliteEventStore } from "../src/store/sqlite.js";
import { timeCalls } from "./timing.js";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}
const numItems = Number(arg("--items", "1000000"));
const d = Number(arg("--d", "64"));
const dir = arg("--dir", ".");
if (process.argv.includes("--gc-compare")) {
  process.stdout.write(`${catalogueGcLine(numItems)}\n`);
  process.exit(0);
}

const started = performance.now();
const model = new LruRec({ numItems, hiddenDim: d, numBlocks: 2, seed: 1 });
// Zipf-like popularity, so "most popular" is well defined without any users. Ids and titles are made on
// demand: the catalogue stores them compactly and nothing here keeps a million strings alive.
const popularity = Float32Array.from({ length: numItems + 1 }, (_, i) => (i === 0 ? 0 : numItems / i));
const catalogue = new Catalogue({
  numItems,
  itemId: (i) => String(i),
  title: (i) => `Item ${i}`,
  numUsers: 0,
  userId: () => "",
  history: () => [],
  popularity,
});
const stateModel = lruStateModel(model);
stateModel.scores([stateModel.fromHistory([1])]); // builds the SIMD scorer's copy of the item table
const store = new SqliteEventStore(join(dir, "catalogue-events.sqlite"));
const server = await createServer({ catalogue, stateModel, store, ranking: null });
const url = await server.app.listen({ host: "127.0.0.1", port: 0 });
process.stdout.write(
  `listening on ${url} (${numItems} items, d ${d}, ready in ${((performance.now() - started) / 1000).toFixed(1)} s)\n`,
);
process.once("SIGTERM", () => {
  void server.close().then(() => process.exit(0));
});

/**
 * A full GC (V8 mark-compact, on the main thread: a pause for every request) with a catalogue of --items
 * items held: the server's compact Catalogue against the same ids and titles as JS strings with a Map from
 * id to index (the previous storage). Median wall (CPU) time of 5 collections each.
 */
function catalogueGcLine(items: number): string {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  const collect = () => ({ ...timeCalls(gc, 5), heapMb: process.memoryUsage().heapUsed / 1e6 });
  let compact: Catalogue | null = new Catalogue({
    numItems: items,
    itemId: (i) => String(i),
    title: (i) => `Item ${i}`,
    numUsers: 0,
    userId: () => "",
    history: () => [],
    popularity: new Float32Array(items + 1),
  });
  const a = collect();
  if (compact.item(String(items)) !== items) throw new Error("catalogue lookup failed");
  compact = null;
  let ids: string[] | null = Array.from({ length: items + 1 }, (_, i) => (i === 0 ? "" : String(i)));
  let titles: string[] | null = Array.from({ length: items + 1 }, (_, i) => (i === 0 ? "" : `Item ${i}`));
  let index: Map<string, number> | null = new Map();
  for (let i = 1; i <= items; i++) index.set(ids[i]!, i);
  const b = collect();
  if (index.get(String(items)) !== items || titles.length !== items + 1) throw new Error("map lookup failed");
  ids = titles = index = null;
  const n = items.toLocaleString("en-US");
  return `| full GC (mark-compact) with a ${n}-item catalogue held, compact storage (heap ${a.heapMb.toFixed(0)} MB) | ${a.wall.toFixed(1)} (${a.cpu.toFixed(2)}) | ids and titles as JS strings + a Map (heap ${b.heapMb.toFixed(0)} MB) ${b.wall.toFixed(1)} (${b.cpu.toFixed(2)}) ms: ${(b.wall / a.wall).toFixed(1)}× |`;
}
