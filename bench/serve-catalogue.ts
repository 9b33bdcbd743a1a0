/**
 * Child process of `npm run bench -- serve`: the real HTTP server (createServer) over a synthetic
 * catalogue of --items items (default 1,000,000) with an LRURec of width --d (default 64), random weights,
 * SQLite store in --dir. Prints "listening on <url>" when ready; stops on SIGTERM.
 */
import { join } from "node:path";
import { LruRec } from "../src/retrievers/lru.js";
import { createServer } from "../src/server/app.js";
import { Catalogue } from "../src/server/catalogue.js";
import { lruStateModel } from "../src/server/user-state.js";
import { SqliteEventStore } from "../src/store/sqlite.js";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}
const numItems = Number(arg("--items", "1000000"));
const d = Number(arg("--d", "64"));
const dir = arg("--dir", ".");

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
