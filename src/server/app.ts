/**
 * The HTTP API (Fastify, JSON-schema validated): recommendations from each user's incremental state,
 * optionally re-ranked by the LLM through the micro-batching queue, and durable events.
 * The server only composes library pieces: a Catalogue, a StateModel, an EventStore, a RankingQueue.
 */
import Fastify, { type FastifyError, type FastifyInstance } from "fastify";
import { topItems } from "../retrievers/evaluate.js";
import type { EventInput, EventStore, StoredEvent } from "../store/types.js";
import { rejectUnknownKeys } from "../util/errors.js";
import type { Catalogue } from "./catalogue.js";
import { ServerMetrics } from "./metrics.js";
import { QueueFullError, type RankingQueue } from "./ranking.js";
import { type ApiLimits, apiSchemas, DEFAULT_LIMITS, openApiDocument } from "./schemas.js";
import type { StateModel } from "./user-state.js";
import { UserStates } from "./users.js";

export interface ServingServices {
  catalogue: Catalogue;
  stateModel: StateModel;
  store: EventStore;
  /** LLM ranking; null = retrieval only. */
  ranking: RankingQueue | null;
}

export interface ServerOptions {
  limits?: Partial<ApiLimits>;
  /** Users whose state is kept in memory. Default 100,000. */
  stateCapacity?: number;
  /** Server-side problems (5xx) are reported here; the CLI prints them. */
  onError?: (message: string) => void;
}

export interface LlamarecServer {
  readonly app: FastifyInstance;
  readonly metrics: ServerMetrics;
  readonly users: UserStates;
  readonly limits: ApiLimits;
  /** Graceful stop: refuse new requests, finish in-flight ones and queued rankings, close the store. */
  close(): Promise<void>;
}

interface RecommendBody {
  user_id?: string | number;
  history?: (string | number)[];
  k?: number;
  rank?: boolean;
  exclude_seen?: boolean;
}

interface EventBody {
  user_id: string | number;
  item_id: string | number;
  timestamp?: number;
}

class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;

/** One line naming the field from an Ajv error. */
function validationMessage(error: FastifyError): { message: string; field: string } {
  // With anyOf (ids: string or integer) Ajv lists the failed branches first; the anyOf error names the field.
  const v = error.validation!.find((e) => e.keyword === "anyOf") ?? error.validation![0]!;
  const context = error.validationContext ?? "body";
  const path = `${context}${v.instancePath}`;
  const params = v.params as Record<string, unknown>;
  if (v.keyword === "additionalProperties")
    return {
      message: `${path}/${params.additionalProperty}: unknown field`,
      field: `${path}/${params.additionalProperty}`,
    };
  if (v.keyword === "required")
    return {
      message: `${path}/${params.missingProperty} is required`,
      field: `${path}/${params.missingProperty}`,
    };
  if (v.keyword === "anyOf")
    return { message: `${path} must be a non-empty string or a non-negative integer`, field: path };
  return { message: `${path} ${v.message ?? "is invalid"}`, field: path };
}

export async function createServer(
  services: ServingServices,
  options: ServerOptions = {},
): Promise<LlamarecServer> {
  const { catalogue, stateModel, store, ranking } = services;
  rejectUnknownKeys(options.limits, DEFAULT_LIMITS, "server limits");
  const limits: ApiLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const schemas = apiSchemas(limits);
  let users: UserStates;
  const metrics = new ServerMetrics({
    queueDepth: () => ranking?.depth ?? 0,
    cachedUsers: () => users?.size ?? 0,
  });
  users = new UserStates(catalogue, stateModel, store, {
    ...(options.stateCapacity ? { capacity: options.stateCapacity } : {}),
    ...(ranking ? { recent: ranking.tools.maxHistory } : {}),
    onLookup: (result) => metrics.stateCache.inc({ result }),
  });
  const numCandidates = ranking?.tools.numCandidates ?? limits.maxK;
  ranking?.addBatchListener((size) => metrics.batchSize.observe(size));

  const app = Fastify({
    logger: false,
    bodyLimit: limits.bodyLimit,
    return503OnClosing: true,
    forceCloseConnections: "idle",
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: false },
    },
  });

  app.setErrorHandler((error: FastifyError | HttpError, _request, reply) => {
    if (error instanceof HttpError) {
      return reply
        .code(error.statusCode)
        .send({ error: error.code, message: error.message, ...(error.field ? { field: error.field } : {}) });
    }
    if (error.validation) {
      const { message, field } = validationMessage(error);
      return reply.code(400).send({ error: "bad_request", message, field });
    }
    const status = error.statusCode ?? 500;
    if (status < 500) {
      const code =
        status === 413 ? "payload_too_large" : status === 415 ? "unsupported_media_type" : "bad_request";
      return reply.code(status).send({ error: code, message: error.message });
    }
    options.onError?.(`${error.name}: ${error.message}`);
    return reply.code(500).send({ error: "internal", message: "internal error (logged by the server)" });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: "not_found", message: `no route ${request.method} ${request.url}` }),
  );
  app.addHook("onResponse", async (request, reply) => {
    const route = request.routeOptions.url ?? "unmatched";
    metrics.requests.inc({ method: request.method, route, status: String(reply.statusCode) });
    metrics.requestSeconds.observe({ method: request.method, route }, reply.elapsedTime / 1000);
  });

  app.post<{ Body: RecommendBody }>(
    "/v1/recommend",
    { schema: { body: schemas.recommendBody, response: { 200: schemas.recommendResponse } } },
    async (request, reply) => {
      const body = request.body;
      if (body.user_id !== undefined && body.history !== undefined)
        throw new HttpError(
          400,
          "bad_request",
          "body/history: give user_id or history, not both",
          "body/history",
        );
      const started = performance.now();
      const k = body.k ?? 10;
      const excludeSeen = body.exclude_seen ?? true;
      const wantRank = body.rank ?? ranking !== null;
      const notes: string[] = [];
      const unknown: string[] = [];
      let state: unknown = null;
      let seen: ReadonlySet<number> = new Set();
      let recent: readonly number[] = [];
      let length = 0;
      if (body.user_id !== undefined) {
        const entry = await users.get(String(body.user_id));
        ({ state, seen, recent, length } = entry);
      } else if (body.history) {
        const items: number[] = [];
        for (const raw of body.history) {
          const i = catalogue.item(String(raw));
          if (i > 0) items.push(i);
          else unknown.push(String(raw));
        }
        if (unknown.length > 0) {
          metrics.unknownItems.inc({ endpoint: "recommend" }, unknown.length);
          notes.push(`${unknown.length} history item(s) unknown to the model were ignored`);
        }
        state = stateModel.fromHistory(items);
        seen = new Set(items);
        recent = items.slice(-(ranking?.tools.maxHistory ?? 20));
        length = items.length;
      }
      const excluded = excludeSeen ? seen : new Set<number>();
      const rankable = wantRank && ranking !== null && length > 0;
      const wanted = rankable ? Math.max(k, numCandidates) : k;
      let candidates: number[];
      let scores: number[];
      if (length === 0) {
        candidates = [];
        for (const i of catalogue.popular) {
          if (candidates.length === wanted) break;
          if (!excluded.has(i)) candidates.push(i);
        }
        scores = candidates.map((i) => catalogue.popularity[i]!);
        notes.push("no history: the most popular items");
      } else {
        ({ items: candidates, scores } = stateModel.top
          ? stateModel.top(state, wanted, excluded)
          : topItems(stateModel.scores([state]), wanted, excluded));
      }
      const retrievalMs = performance.now() - started;
      metrics.retrievalSeconds.observe(retrievalMs / 1000);

      let rankingMs = 0;
      let ranked = false;
      if (wantRank && ranking === null) notes.push("this server has no ranker: the retriever's order");
      if (rankable && candidates.length > 0) {
        const t = performance.now();
        let outcome: Awaited<ReturnType<RankingQueue["rank"]>>;
        try {
          outcome = await ranking.rank(
            recent.map((i) => catalogue.title(i)),
            candidates.map((i) => catalogue.title(i)),
          );
        } catch (err) {
          if (err instanceof QueueFullError) {
            metrics.rankingRejected.inc();
            reply.header("Retry-After", String(err.retryAfterSeconds));
            throw new HttpError(
              429,
              "too_many_requests",
              `the ranking queue is full; retry in ${err.retryAfterSeconds} s`,
            );
          }
          throw err;
        }
        rankingMs = performance.now() - t;
        metrics.rankingSeconds.observe(rankingMs / 1000);
        if (outcome.ok) {
          candidates = outcome.order.map((p) => candidates[p]!);
          scores = outcome.scores;
          ranked = true;
        } else {
          metrics.rankerFallbacks.inc({ reason: outcome.reason });
          notes.push(`${outcome.message}: the retriever's order`);
        }
      }
      const items = candidates.slice(0, k).map((i, p) => ({
        item_id: catalogue.itemId(i),
        title: catalogue.title(i),
        score: scores[p]!,
      }));
      return {
        items,
        retrieval_ms: round(retrievalMs),
        ranking_ms: round(rankingMs),
        ranked,
        ...(notes.length > 0 ? { note: notes.join("; ") } : {}),
        ...(unknown.length > 0 ? { unknown_items: unknown } : {}),
      };
    },
  );

  app.post<{ Body: EventBody | { events: EventBody[] } }>(
    "/v1/events",
    { schema: { body: schemas.eventsBody, response: { 200: schemas.eventsResponse } } },
    async (request) => {
      const body = request.body;
      const list = "events" in body ? body.events : [body];
      const now = Date.now();
      const inputs: EventInput[] = list.map((e) => ({
        userId: String(e.user_id),
        itemId: String(e.item_id),
        timestamp: e.timestamp === undefined ? now : Math.round(e.timestamp * 1000),
      }));
      const stored = await store.append(inputs);
      metrics.eventsStored.inc(stored.length);
      const byUser = new Map<string, StoredEvent[]>();
      for (const e of stored) {
        const l = byUser.get(e.userId) ?? [];
        l.push(e);
        byUser.set(e.userId, l);
      }
      for (const [userId, events] of byUser) users.afterAppend(userId, events);
      const unknown = [...new Set(inputs.map((e) => e.itemId).filter((id) => catalogue.item(id) === 0))];
      if (unknown.length > 0) metrics.unknownItems.inc({ endpoint: "events" }, unknown.length);
      return { stored: stored.length, unknown_items: unknown };
    },
  );

  app.get<{ Params: { id: string } }>(
    "/v1/items/:id",
    { schema: { params: schemas.idParams("id"), response: { 200: schemas.itemResponse } } },
    async (request) => {
      const i = catalogue.item(request.params.id);
      if (i === 0) throw new HttpError(404, "not_found", `item ${request.params.id} is not in the catalogue`);
      return {
        item_id: catalogue.itemId(i),
        title: catalogue.title(i),
        popularity: catalogue.popularity[i]!,
      };
    },
  );

  app.get<{ Params: { id: string } }>(
    "/v1/users/:id/history",
    { schema: { params: schemas.idParams("id"), response: { 200: schemas.historyResponse } } },
    async (request) => {
      const userId = request.params.id;
      const events = await store.events(userId);
      return {
        user_id: userId,
        dataset_items: catalogue
          .knownHistory(userId)
          .map((i) => ({ item_id: catalogue.itemId(i), title: catalogue.title(i) })),
        events: events.map((e) => {
          const i = catalogue.item(e.itemId);
          return {
            position: e.position,
            item_id: e.itemId,
            title: i > 0 ? catalogue.title(i) : null,
            timestamp: e.timestamp / 1000,
            known: i > 0,
          };
        }),
      };
    },
  );

  let closing = false;
  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/readyz", async (_request, reply) => {
    if (closing) return reply.code(503).send({ status: "shutting down" });
    try {
      await store.ping();
    } catch (err) {
      return reply.code(503).send({ status: `store not answering: ${(err as Error).message}` });
    }
    return {
      status: "ready",
      items: catalogue.numItems,
      store: store.kind,
      ranker: ranking?.tools.backend.name ?? "none",
      incremental_state: stateModel.incremental,
    };
  });
  app.get("/metrics", async (_request, reply) => {
    reply.header("Content-Type", metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  const document = openApiDocument(limits);
  app.get("/openapi.json", async () => document);

  await app.ready();
  let closed: Promise<void> | null = null;
  return {
    app,
    metrics,
    users,
    limits,
    close() {
      closed ??= (async () => {
        closing = true;
        await app.close();
        await ranking?.close();
        await store.close();
      })();
      return closed;
    },
  };
}
