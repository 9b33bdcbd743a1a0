// Serving from your own process: a run folder → the HTTP server of `llamarec serve` (Fastify), here
// retrieval only (no LLM ranker). Train briefly, record a new user's events, ask for recommendations.
// In this repository: `npx tsx examples/serve.ts`. In your project (`npm install llamarec`): the same code.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer, loadDataset, loadServing, trainRetriever } from "llamarec";

const { dataset } = await loadDataset({ name: "ml-latest-small" }, { noCache: true });
const runDir = mkdtempSync(join(tmpdir(), "llamarec-serve-"));
await trainRetriever({ dataset, model: "lru", runDir, training: { maxIterations: 30, valEvery: 30 } });

// The services of a run folder: catalogue, the retriever's per-user state, the event store (SQLite in the
// run folder here; a postgres:// URL shares users between servers), and a ranker (null: retrieval only).
const services = await loadServing({ runDir, ranker: null, log: (line) => console.log(line) });
const server = await createServer(services);
try {
  // Fastify's inject() answers without a socket; `await server.app.listen({ port: 8080 })` serves HTTP.
  const post = async (url: string, payload: object) =>
    (await server.app.inject({ method: "POST", url, payload })).json();
  console.log(
    JSON.stringify(await post("/v1/events", { events: [{ user_id: "new-user", item_id: "2571" }] })),
  );
  const answer = await post("/v1/recommend", { user_id: "new-user", k: 3 });
  for (const item of answer.items) console.log(`${item.item_id}\t${item.title}`);
  const bad = await server.app.inject({ method: "POST", url: "/v1/recommend", payload: { k: 21 } });
  console.log(`${bad.statusCode} ${bad.json().message}`);
} finally {
  await server.close(); // also closes the event store
  rmSync(runDir, { recursive: true, force: true });
}
