/**
 * Prometheus metrics of one server (its own registry, so several servers can live in one process, e.g.
 * in tests): requests and their latency per route, retrieval and ranking time, the ranking queue depth
 * and batch sizes, ranker fallbacks, stored events, the user-state cache.
 */
import client from "prom-client";

export class ServerMetrics {
  readonly registry = new client.Registry();
  readonly requests: client.Counter<"method" | "route" | "status">;
  readonly requestSeconds: client.Histogram<"method" | "route">;
  readonly retrievalSeconds: client.Histogram;
  readonly rankingSeconds: client.Histogram;
  readonly queueDepth: client.Gauge;
  readonly batchSize: client.Histogram;
  readonly rankerFallbacks: client.Counter<"reason">;
  readonly rankingRejected: client.Counter;
  readonly eventsStored: client.Counter;
  readonly unknownItems: client.Counter<"endpoint">;
  readonly stateCache: client.Counter<"result">;
  readonly cachedUsers: client.Gauge;

  constructor(sources: { queueDepth: () => number; cachedUsers: () => number }) {
    const r = [this.registry];
    client.collectDefaultMetrics({ register: this.registry, prefix: "llamarec_" });
    const latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
    this.requests = new client.Counter({
      name: "llamarec_http_requests_total",
      help: "HTTP requests by method, route and status code",
      labelNames: ["method", "route", "status"],
      registers: r,
    });
    this.requestSeconds = new client.Histogram({
      name: "llamarec_http_request_duration_seconds",
      help: "HTTP request latency by method and route",
      labelNames: ["method", "route"],
      buckets: latencyBuckets,
      registers: r,
    });
    this.retrievalSeconds = new client.Histogram({
      name: "llamarec_retrieval_duration_seconds",
      help: "Retrieval time per recommendation (state update + scoring + top-k)",
      buckets: latencyBuckets,
      registers: r,
    });
    this.rankingSeconds = new client.Histogram({
      name: "llamarec_ranking_duration_seconds",
      help: "LLM ranking time per recommendation, queueing included",
      buckets: latencyBuckets,
      registers: r,
    });
    this.queueDepth = new client.Gauge({
      name: "llamarec_ranking_queue_depth",
      help: "Ranking requests waiting for a batch",
      registers: r,
      collect() {
        this.set(sources.queueDepth());
      },
    });
    this.batchSize = new client.Histogram({
      name: "llamarec_ranking_batch_size",
      help: "Prompts per ranker batch",
      buckets: [1, 2, 4, 8, 16, 32, 64],
      registers: r,
    });
    this.rankerFallbacks = new client.Counter({
      name: "llamarec_ranker_fallbacks_total",
      help: "Recommendations answered in the retriever's order because ranking failed (deadline, error)",
      labelNames: ["reason"],
      registers: r,
    });
    this.rankingRejected = new client.Counter({
      name: "llamarec_ranking_rejected_total",
      help: "Recommendations refused with 429 because the ranking queue was full",
      registers: r,
    });
    this.eventsStored = new client.Counter({
      name: "llamarec_events_stored_total",
      help: "Events durably stored",
      registers: r,
    });
    this.unknownItems = new client.Counter({
      name: "llamarec_unknown_items_total",
      help: "Item ids the model does not know, by endpoint",
      labelNames: ["endpoint"],
      registers: r,
    });
    this.stateCache = new client.Counter({
      name: "llamarec_user_state_cache_total",
      help: "User-state lookups: hit (up to date), catchup (newer events applied), miss (rebuilt from the store)",
      labelNames: ["result"],
      registers: r,
    });
    this.cachedUsers = new client.Gauge({
      name: "llamarec_user_states_cached",
      help: "Users whose incremental state is in memory",
      registers: r,
      collect() {
        this.set(sources.cachedUsers());
      },
    });
  }
}
