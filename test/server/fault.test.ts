/**
 * Fault test: kill -9 the server while events are being posted, restart it on the same store: every
 * acknowledged event is stored in order, users' states are rebuilt (recommendations equal a full
 * recompute over the stored events), the server is ready again and stops cleanly on SIGTERM.
 * On SQLite (WAL, synchronous=FULL) and on PostgreSQL when a cluster can be started (required in CI).
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { faultScenario, postJson, startServe } from "../../bench/serve-fault.js";
import { topItems } from "../../src/retrievers/evaluate.js";
import { loadModel } from "../../src/retrievers/model-file.js";
import type { SequentialRetriever } from "../../src/retrievers/types.js";
import { runPaths } from "../../src/run/index.js";
import { writeTinyLlama } from "../fixtures/tiny-llama.js";
import { type TinyRun, trainTinyRun } from "./fixtures.js";
import { startPgCluster } from "./pg-cluster.js";

const pg = startPgCluster();
if (!pg.ok) {
  const message = `PostgreSQL could not be started, so the PostgreSQL fault test is NOT run: ${pg.reason}`;
  if (process.env.CI) throw new Error(message);
  console.warn(message);
}

let run: TinyRun;
let model: SequentialRetriever;
beforeAll(async () => {
  run = await trainTinyRun("llamarec-serve-fault-");
  const p = runPaths(run.runDir).retriever;
  model = await loadModel(p.model, p.modelJson);
}, 300_000);
afterAll(() => {
  run?.cleanup();
  if (pg.ok) pg.cluster.stop();
});

const items = Array.from({ length: 60 }, (_, i) => String(i + 1));
const stores = [
  { name: "sqlite", spec: () => `sqlite:${run.dir}/fault.sqlite` },
  ...(pg.ok ? [{ name: "postgres", spec: () => pg.cluster.url }] : []),
];

describe.each(stores)("kill -9 during event posting ($name)", ({ spec }) => {
  it("keeps every acknowledged event, rebuilds states, is healthy after restart", async () => {
    const r = await faultScenario({
      runDir: run.runDir,
      store: spec(),
      items: [...items, "unknown-item"],
      killAfter: 150,
    });
    expect(r.problems).toEqual([]);
    expect(r.acknowledged).toBeGreaterThanOrEqual(150);
    expect(r.found).toBe(r.acknowledged);
    expect(r.sigtermExit).toBe(0);
    // The rebuilt state scores exactly as a full forward pass over the user's stored events.
    const itemIndex = (raw: string) => (raw === "unknown-item" ? 0 : Number(raw)); // synthetic ids are dense
    for (const user of r.users) {
      const history = r.storedItems
        .get(user)!
        .map(itemIndex)
        .filter((i) => i > 0);
      const expected = topItems(
        model.scoreNext(Int32Array.from(history), 1, history.length),
        10,
        new Set(history),
      );
      const got = r.recommended.get(user)!;
      expect(got.items.map((i) => Number(i.item_id))).toEqual(expected.items);
      got.items.forEach((item, p) => {
        expect(Math.abs(item.score - expected.scores[p]!)).toBeLessThan(1e-5);
      });
    }
  }, 400_000);
});

describe("graceful shutdown", () => {
  it("SIGTERM: queued rankings and in-flight requests finish, then exit 0 with the store closed", async () => {
    mkdirSync(join(run.dir, "llm"), { recursive: true });
    const { gguf } = await writeTinyLlama(join(run.dir, "llm"), { seed: 3, std: 0.2 });
    const store = join(run.dir, "term.sqlite");
    // A long batch window keeps the recommendations queued when SIGTERM arrives.
    const s = await startServe([
      "--run",
      run.runDir,
      "--store",
      `sqlite:${store}`,
      "--ranker",
      "llamacpp",
      "--ranker-model",
      gguf,
      "--threads",
      "1",
      "--batch-window-ms",
      "8000",
      "--batch-size",
      "16",
      "--deadline-ms",
      "30000",
    ]);
    await postJson(`${s.url}/v1/events`, { user_id: "term", item_id: "4" });
    const t0 = performance.now();
    const pending = ["1", "2", "3", "term"].map((u) =>
      postJson(`${s.url}/v1/recommend`, { user_id: u, k: 5 }),
    );
    // SIGTERM once the server holds all four in its ranking queue (not before they arrived).
    for (let waited = 0; ; waited += 20) {
      const m = await (await fetch(`${s.url}/metrics`)).text();
      if (/llamarec_ranking_queue_depth 4/.test(m)) break;
      if (waited > 7000)
        throw new Error(
          `the four requests never queued together: ${m.match(/llamarec_ranking_queue_depth \d+/)}`,
        );
      await new Promise((r) => setTimeout(r, 20));
    }
    s.child.kill("SIGTERM");
    const answers = await Promise.all(pending);
    expect(performance.now() - t0).toBeGreaterThan(1000); // they really waited for the batch window
    expect(answers.map((a) => [a.status, a.body.ranked, a.body.note])).toEqual(
      Array(4).fill([200, true, undefined]),
    );
    expect(await s.exited).toBe(0);
    expect(s.stderr()).toMatch(/SIGTERM: finishing in-flight requests/);
    // The store was closed properly: SQLite folds its write-ahead log back into the file on close.
    expect(existsSync(`${store}-wal`)).toBe(false);
    // No new connections after the stop.
    await expect(fetch(`${s.url}/healthz`)).rejects.toThrow();
  }, 400_000);
});
