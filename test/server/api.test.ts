/**
 * The HTTP API on a tiny trained run, every endpoint and error path, run against SQLite and against a
 * real PostgreSQL server (started here, see pg-cluster.ts; in CI a PostgreSQL that cannot start fails).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { topItems } from "../../src/retrievers/evaluate.js";
import { loadModel } from "../../src/retrievers/model-file.js";
import type { SequentialRetriever } from "../../src/retrievers/types.js";
import { runPaths } from "../../src/run/index.js";
import { createServer, type LlamarecServer, type ServerOptions } from "../../src/server/app.js";
import { loadServing } from "../../src/server/load.js";
import { openApiDocument } from "../../src/server/schemas.js";
import { openStore } from "../../src/store/open.js";
import { type TinyRun, trainTinyRun } from "./fixtures.js";
import { startPgCluster } from "./pg-cluster.js";

const pg = startPgCluster();
if (!pg.ok) {
  const message = `PostgreSQL could not be started, so the PostgreSQL store is NOT tested: ${pg.reason}`;
  if (process.env.CI) throw new Error(message);
  console.warn(message);
}

let run: TinyRun;
let model: SequentialRetriever;
let knownHistory: Map<string, number[]>;
let itemIds: string[];
beforeAll(async () => {
  run = await trainTinyRun();
  const p = runPaths(run.runDir).retriever;
  model = await loadModel(p.model, p.modelJson);
  const services = await loadServing({ runDir: run.runDir, store: `sqlite:${run.dir}/probe.sqlite` });
  knownHistory = new Map();
  for (const u of ["1", "2", "3", "7"]) knownHistory.set(u, [...services.catalogue.knownHistory(u)]);
  itemIds = Array.from({ length: services.catalogue.numItems + 1 }, (_, i) =>
    i === 0 ? "" : services.catalogue.itemId(i),
  );
  await services.store.close();
}, 300_000);
afterAll(() => {
  run?.cleanup();
  if (pg.ok) pg.cluster.stop();
});

/** Scores of a full forward pass over the whole history (no incremental state). */
function recompute(history: number[], k: number) {
  const scores = model.scoreNext(Int32Array.from(history), 1, history.length);
  return topItems(scores, k, new Set(history));
}
const dense = (raw: string) => itemIds.indexOf(raw);

interface ServedItem {
  item_id: string;
  title: string;
  score: number;
}

const stores = [
  { name: "sqlite", spec: (tag: string) => `sqlite:${run.dir}/events-${tag}.sqlite` },
  ...(pg.ok ? [{ name: "postgres", spec: (_tag: string) => pg.cluster.url }] : []),
];

describe.each(stores)("API on $name", ({ name, spec }) => {
  let server: LlamarecServer;
  const uid = (s: string) => `${name}-${s}`;
  const start = async (options: ServerOptions = {}) =>
    createServer(await loadServing({ runDir: run.runDir, store: spec("main") }), {
      limits: { maxHistory: 50, maxBatch: 5, bodyLimit: 4096 },
      ...options,
    });
  beforeAll(async () => {
    server = await start();
  });
  afterAll(async () => {
    await server?.close();
  });
  const call = async (
    method: "GET" | "POST",
    url: string,
    payload?: unknown,
    headers?: Record<string, string>,
  ) => {
    const res = await server.app.inject({
      method,
      url,
      ...(payload === undefined
        ? {}
        : typeof payload === "string"
          ? { payload }
          : { payload: payload as object }),
      ...(headers ? { headers } : {}),
    });
    return {
      status: res.statusCode,
      body: res.json() as Record<string, unknown> & { items: ServedItem[] },
      headers: res.headers,
    };
  };

  it("recommends for a dataset user what a full recompute of their history ranks first", async () => {
    const r = await call("POST", "/v1/recommend", { user_id: "1", k: 5 });
    expect(r.status).toBe(200);
    expect(r.body.ranked).toBe(false);
    expect(r.body.note).toBeUndefined();
    const expected = recompute(knownHistory.get("1")!, 5);
    expect(r.body.items.map((i) => dense(i.item_id))).toEqual(expected.items);
    r.body.items.forEach((item, p) => {
      expect(item.score).toBeCloseTo(expected.scores[p]!, 5);
      expect(item.title).toMatch(/\w+ \w+ \d+/);
    });
    expect(typeof r.body.retrieval_ms).toBe("number");
    // Integer ids are the same ids.
    const n = await call("POST", "/v1/recommend", { user_id: 1, k: 5 });
    expect(n.body.items).toEqual(r.body.items);
  });

  it("an event changes the next recommendation exactly as a recompute with it; also after a restart", async () => {
    const user = "2";
    const known = knownHistory.get(user)!;
    const before = await call("POST", "/v1/recommend", { user_id: user, k: 20 });
    const added = [before.body.items[0].item_id, before.body.items[3].item_id];
    const e = await call("POST", "/v1/events", {
      events: added.map((item_id, i) => ({ user_id: user, item_id, timestamp: 1_700_000_000 + i })),
    });
    expect(e.status).toBe(200);
    expect(e.body).toEqual({ stored: 2, unknown_items: [] });
    const after = await call("POST", "/v1/recommend", { user_id: user, k: 10 });
    const expected = recompute([...known, ...added.map(dense)], 10);
    expect(after.body.items.map((i) => dense(i.item_id))).toEqual(expected.items);
    after.body.items.forEach((item, p) => {
      expect(Math.abs(item.score - expected.scores[p]!)).toBeLessThan(1e-5);
    });
    expect(after.body.items.map((i) => i.item_id)).not.toContain(added[0]);

    // Restart: a new server rebuilds the state from the store.
    await server.close();
    server = await start();
    const restarted = await call("POST", "/v1/recommend", { user_id: user, k: 10 });
    expect(restarted.body.items.map((i) => i.item_id)).toEqual(after.body.items.map((i) => i.item_id));
    restarted.body.items.forEach((item, p) => {
      expect(Math.abs(item.score - after.body.items[p]!.score)).toBeLessThan(1e-5);
    });
    // And one more event after the restart continues the rebuilt state.
    await call("POST", "/v1/events", { user_id: user, item_id: restarted.body.items[0].item_id });
    const more = await call("POST", "/v1/recommend", { user_id: user, k: 10 });
    const expected2 = recompute([...known, ...added.map(dense), dense(restarted.body.items[0].item_id)], 10);
    expect(more.body.items.map((i) => dense(i.item_id))).toEqual(expected2.items);
  });

  it("a new user gets the most popular items, then personal ones from their events", async () => {
    const user = uid(`new-${Date.now()}`);
    const cold = await call("POST", "/v1/recommend", { user_id: user, k: 3 });
    expect(cold.status).toBe(200);
    expect(cold.body.note).toMatch(/no history: the most popular items/);
    const pops = await Promise.all(cold.body.items.map((i) => call("GET", `/v1/items/${i.item_id}`)));
    const popularity = pops.map((p) => p.body.popularity as number);
    expect([...popularity].sort((a, b) => b - a)).toEqual(popularity);
    await call("POST", "/v1/events", { user_id: user, item_id: "5" });
    await call("POST", "/v1/events", { user_id: user, item_id: "9" });
    const warm = await call("POST", "/v1/recommend", { user_id: user, k: 4 });
    expect(warm.body.note).toBeUndefined();
    expect(warm.body.items.map((i) => dense(i.item_id))).toEqual(
      recompute([dense("5"), dense("9")], 4).items,
    );
    const byHistory = await call("POST", "/v1/recommend", { history: ["5", 9], k: 4 });
    expect(byHistory.body.items).toEqual(warm.body.items);
  });

  it("stores and reports unknown items without changing the state", async () => {
    const user = uid(`unk-${Date.now()}`);
    await call("POST", "/v1/events", { user_id: user, item_id: "7" });
    const before = await call("POST", "/v1/recommend", { user_id: user });
    const e = await call("POST", "/v1/events", {
      events: [
        { user_id: user, item_id: "no-such-item" },
        { user_id: user, item_id: 999999 },
      ],
    });
    expect(e.body).toEqual({ stored: 2, unknown_items: ["no-such-item", "999999"] });
    const after = await call("POST", "/v1/recommend", { user_id: user });
    expect(after.body.items).toEqual(before.body.items);
    const h = await call("GET", `/v1/users/${user}/history`);
    expect(h.status).toBe(200);
    expect(h.body.dataset_items).toEqual([]);
    expect(h.body.events).toMatchObject([
      { position: 1, item_id: "7", known: true },
      { position: 2, item_id: "no-such-item", known: false, title: null },
      { position: 3, item_id: "999999", known: false },
    ]);
    const r = await call("POST", "/v1/recommend", { history: ["7", "nope"], k: 3 });
    expect(r.body.unknown_items).toEqual(["nope"]);
    expect(r.body.note).toMatch(/1 history item\(s\) unknown/);
  });

  it("exclude_seen false may return history items; the dataset history is listed", async () => {
    const h = await call("GET", "/v1/users/3/history");
    expect((h.body.dataset_items as unknown[]).length).toBe(knownHistory.get("3")!.length);
    const r = await call("POST", "/v1/recommend", { user_id: "3", k: 20, exclude_seen: false });
    const scores = model.scoreNext(Int32Array.from(knownHistory.get("3")!), 1, knownHistory.get("3")!.length);
    expect(r.body.items.map((i) => dense(i.item_id))).toEqual(topItems(scores, 20, new Set()).items);
  });

  it("asks for ranking without a ranker: the retriever's order, said in the note", async () => {
    const r = await call("POST", "/v1/recommend", { user_id: "1", k: 3, rank: true });
    expect(r.body.ranked).toBe(false);
    expect(r.body.note).toMatch(/no ranker/);
  });

  it("rejects bad requests with 400 naming the field", async () => {
    const bad: [unknown, RegExp][] = [
      [{ user_id: "1", history: ["1"] }, /body\/history: give user_id or history, not both/],
      [{ k: 0 }, /body\/k must be >= 1/],
      [{ k: 21 }, /body\/k must be <= 20/],
      [{ k: "5" }, /body\/k must be integer/],
      [{ k: 2.5 }, /body\/k must be integer/],
      [{ rank: "yes" }, /body\/rank must be boolean/],
      [{ user_id: "" }, /body\/user_id/],
      [{ user_id: null }, /body\/user_id must be a non-empty string or a non-negative integer/],
      [{ history: "1,2" }, /body\/history must be array/],
      [{ history: [true] }, /body\/history\/0 must be a non-empty string/],
      [
        { history: Array.from({ length: 51 }, (_, i) => String(i + 1)) },
        /body\/history must NOT have more than 50 items/,
      ],
      [{ colour: "red" }, /body\/colour: unknown field/],
      [[1, 2], /body must be object/],
    ];
    for (const [body, message] of bad) {
      const r = await call("POST", "/v1/recommend", body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error).toBe("bad_request");
      expect(r.body.message).toMatch(message);
    }
    const badEvents: [unknown, RegExp][] = [
      [{ user_id: "1" }, /body\/item_id is required/],
      [{ item_id: "1" }, /body\/user_id is required/],
      [{ user_id: "1", item_id: "1", timestamp: -5 }, /body\/timestamp must be >= 0/],
      [{ user_id: "1", item_id: "1", timestamp: "yesterday" }, /body\/timestamp must be number/],
      [{ user_id: "1", item_id: "1", extra: 1 }, /body\/extra: unknown field/],
      [{ events: [] }, /body\/events must NOT have fewer than 1 items/],
      [
        { events: Array.from({ length: 6 }, () => ({ user_id: "1", item_id: "1" })) },
        /body\/events must NOT have more than 5 items/,
      ],
      [
        { events: [{ user_id: "1", item_id: "1" }, { user_id: "1" }] },
        /body\/events\/1\/item_id is required/,
      ],
      [{ events: [{ user_id: "1", item_id: "1" }], user_id: "1" }, /body\/user_id: unknown field/],
    ];
    const countBefore = await server.users.size;
    for (const [body, message] of badEvents) {
      const r = await call("POST", "/v1/events", body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.message).toMatch(message);
    }
    expect(server.users.size).toBe(countBefore);
    // Nothing of a rejected batch was stored.
    const h = await call("GET", "/v1/users/1/history");
    expect(h.body.events).toEqual([]);
  });

  it("answers malformed bodies, oversize bodies, unknown routes and items", async () => {
    const json = { "content-type": "application/json" };
    const broken = await call("POST", "/v1/events", '{"user_id": "1", ', json);
    expect(broken.status).toBe(400);
    expect(broken.body.message).toMatch(/JSON/i);
    const big = await call("POST", "/v1/recommend", JSON.stringify({ history: ["x".repeat(5000)] }), json);
    expect(big.status).toBe(413);
    expect(big.body.error).toBe("payload_too_large");
    const text = await call("POST", "/v1/events", "user=1", { "content-type": "text/plain" });
    expect(text.status).toBe(400);
    expect(text.body.message).toMatch(/body must be object/);
    const xml = await call("POST", "/v1/events", "<event/>", { "content-type": "application/xml" });
    expect(xml.status).toBe(415);
    const none = await call("GET", "/v1/nothing");
    expect(none.status).toBe(404);
    const item = await call("GET", "/v1/items/not-an-item");
    expect(item.status).toBe(404);
    expect(item.body.message).toMatch(/not-an-item is not in the catalogue/);
    const ok = await call("GET", `/v1/items/${itemIds[1]}`);
    expect(ok.body).toMatchObject({ item_id: itemIds[1], popularity: expect.any(Number) });
  });

  it("refuses an unknown limit by name when the server is created", async () => {
    const services = await loadServing({ runDir: run.runDir, store: spec("limits") });
    try {
      const limits = { maxHistorys: 5 } as unknown as ServerOptions["limits"];
      await expect(createServer(services, { limits })).rejects.toThrow(
        /server limits: unknown option "maxHistorys" \(known: .*maxHistory/,
      );
    } finally {
      await services.store.close();
    }
  });

  it("health, readiness, metrics and the OpenAPI document", async () => {
    expect((await call("GET", "/healthz")).body).toEqual({ status: "ok" });
    const ready = await call("GET", "/readyz");
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({
      status: "ready",
      store: name,
      ranker: "none",
      incremental_state: true,
    });
    await call("POST", "/v1/recommend", { user_id: "1" });
    const m = await server.app.inject({ method: "GET", url: "/metrics" });
    expect(m.headers["content-type"]).toMatch(/text\/plain/);
    for (const metric of [
      'llamarec_http_requests_total{method="POST",route="/v1/recommend",status="200"}',
      "llamarec_http_request_duration_seconds_bucket",
      "llamarec_retrieval_duration_seconds_count",
      "llamarec_ranking_queue_depth 0",
      "llamarec_ranking_batch_size",
      "llamarec_ranker_fallbacks_total",
      "llamarec_events_stored_total",
      'llamarec_user_state_cache_total{result="hit"}',
    ]) {
      expect(m.body).toContain(metric);
    }
    const doc = await call("GET", "/openapi.json");
    expect(doc.body).toEqual(JSON.parse(JSON.stringify(openApiDocument(server.limits))));
  });

  it("store: concurrent appends for one user from two connections get gapless positions", async () => {
    const a = await openStore(spec("main"));
    const b = await openStore(spec("main"));
    const user = uid(`race-${Date.now()}`);
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 ? a : b).append([
          { userId: user, itemId: `x${i}`, timestamp: i },
          { userId: `${user}-other`, itemId: "1", timestamp: i },
        ]),
      ),
    );
    const events = await a.events(user);
    expect(events.map((e) => e.position)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(new Set(events.map((e) => e.itemId)).size).toBe(20);
    expect((await b.events(user, 15)).map((e) => e.position)).toEqual([16, 17, 18, 19, 20]);
    await a.close();
    await b.close();
  });

  it("another process's events are applied on the next read (shared store)", async () => {
    const other = await start();
    const user = uid(`shared-${Date.now()}`);
    await call("POST", "/v1/events", { user_id: user, item_id: "3" });
    await call("POST", "/v1/recommend", { user_id: user }); // cached here
    await other.app.inject({ method: "POST", url: "/v1/events", payload: { user_id: user, item_id: "11" } });
    const r = await call("POST", "/v1/recommend", { user_id: user, k: 5 });
    expect(r.body.items.map((i) => dense(i.item_id))).toEqual(recompute([dense("3"), dense("11")], 5).items);
    await other.close();
  });
});

describe("OpenAPI document in the repo", () => {
  it("docs/openapi.json is the document the server serves (regenerate: llamarec serve --openapi)", () => {
    const file = JSON.parse(readFileSync(join(import.meta.dirname, "../../docs/openapi.json"), "utf8"));
    expect(file).toEqual(JSON.parse(JSON.stringify(openApiDocument())));
  });
});
