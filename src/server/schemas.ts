/**
 * The HTTP API's JSON schemas (validated by Fastify/Ajv on every request) and the OpenAPI 3.1 document
 * built from the same schemas, so the documentation cannot drift from what the server enforces. The
 * document is served at GET /openapi.json and kept in the repo as docs/openapi.json (a test compares).
 */

export interface ApiLimits {
  /** Longest `history` in a recommendation request. */
  maxHistory: number;
  /** Most events in one POST /v1/events. */
  maxBatch: number;
  /** Largest request body in bytes. */
  bodyLimit: number;
  /** Largest `k` (the ranker's candidate count). */
  maxK: number;
}

export const DEFAULT_LIMITS: Readonly<ApiLimits> = {
  maxHistory: 2000,
  maxBatch: 1000,
  bodyLimit: 1 << 20,
  maxK: 20,
};

const id = (description: string) => ({
  description,
  anyOf: [
    { type: "string", minLength: 1, maxLength: 256 },
    { type: "integer", minimum: 0 },
  ],
});

const timestamp = {
  description: "Seconds since the Unix epoch (default: when the server receives the event)",
  type: "number",
  minimum: 0,
  maximum: 1e11,
};

const error = {
  type: "object",
  required: ["error", "message"],
  properties: {
    error: { type: "string", description: "bad_request, not_found, too_many_requests, not_ready, internal" },
    message: { type: "string", description: "What was wrong; for bad requests it names the field" },
    field: { type: "string", description: "The offending field, e.g. body/k" },
  },
};

export function apiSchemas(limits: ApiLimits) {
  const eventBody = {
    type: "object",
    additionalProperties: false,
    required: ["user_id", "item_id"],
    properties: {
      user_id: id("The user's id (any string or integer)"),
      item_id: id("The item's id as in the run's dataset; unknown ids are stored and reported"),
      timestamp,
    },
  };
  const recommendBody = {
    type: "object",
    additionalProperties: false,
    properties: {
      user_id: id("A user: their dataset history plus every event recorded since"),
      history: {
        description: "Item ids, oldest first, instead of a user_id",
        type: "array",
        maxItems: limits.maxHistory,
        items: id("An item id"),
      },
      k: { type: "integer", minimum: 1, maximum: limits.maxK, default: 10 },
      rank: {
        type: "boolean",
        description: "Rank with the LLM (default: true when the server has a ranker)",
      },
      exclude_seen: { type: "boolean", default: true, description: "Leave out items in the history" },
    },
  };
  const item = {
    type: "object",
    required: ["item_id", "title", "score"],
    properties: {
      item_id: { type: "string" },
      title: { type: "string" },
      score: {
        type: "number",
        description:
          "Ranker letter log-probability when ranked, else the retriever's score (popularity count when there is no history)",
      },
    },
  };
  const recommendResponse = {
    type: "object",
    required: ["items", "retrieval_ms", "ranking_ms", "ranked"],
    properties: {
      items: { type: "array", items: item },
      retrieval_ms: { type: "number" },
      ranking_ms: { type: "number" },
      ranked: { type: "boolean" },
      note: { type: "string" },
      unknown_items: { type: "array", items: { type: "string" } },
    },
  };
  const eventsBody = {
    description: "One event, or a batch {events: [...]}",
    type: "object",
    if: { required: ["events"] },
    // biome-ignore lint/suspicious/noThenProperty: JSON Schema keyword
    then: {
      type: "object",
      additionalProperties: false,
      required: ["events"],
      properties: { events: { type: "array", minItems: 1, maxItems: limits.maxBatch, items: eventBody } },
    },
    else: eventBody,
  };
  const eventsResponse = {
    type: "object",
    required: ["stored", "unknown_items"],
    properties: {
      stored: { type: "integer" },
      unknown_items: {
        type: "array",
        items: { type: "string" },
        description: "Stored, but unknown to the model",
      },
    },
  };
  const itemResponse = {
    type: "object",
    required: ["item_id", "title", "popularity"],
    properties: {
      item_id: { type: "string" },
      title: { type: "string" },
      popularity: { type: "number", description: "Interactions in the run's dataset" },
    },
  };
  const historyResponse = {
    type: "object",
    required: ["user_id", "dataset_items", "events"],
    properties: {
      user_id: { type: "string" },
      dataset_items: {
        type: "array",
        description: "The user's history in the run's dataset, oldest first",
        items: { type: "object", properties: { item_id: { type: "string" }, title: { type: "string" } } },
      },
      events: {
        type: "array",
        description: "Events recorded since, in the order they were stored",
        items: {
          type: "object",
          properties: {
            position: { type: "integer" },
            item_id: { type: "string" },
            title: { type: ["string", "null"] },
            timestamp: { type: "number" },
            known: { type: "boolean" },
          },
        },
      },
    },
  };
  const idParams = (name: string) => ({
    type: "object",
    required: [name],
    properties: { [name]: { type: "string", minLength: 1, maxLength: 256 } },
  });
  const status = { type: "object", properties: { status: { type: "string" } }, additionalProperties: true };
  return {
    eventBody,
    recommendBody,
    recommendResponse,
    eventsBody,
    eventsResponse,
    itemResponse,
    historyResponse,
    idParams,
    status,
    error,
  };
}

/** The OpenAPI 3.1 document of the API with these limits. */
export function openApiDocument(limits: ApiLimits = DEFAULT_LIMITS, version = "0.1.0") {
  const s = apiSchemas(limits);
  const json = (schema: object, description: string) => ({
    description,
    content: { "application/json": { schema } },
  });
  const errors = {
    "400": json(s.error, "Invalid request: the message names the field"),
    "413": json(s.error, `Body larger than ${limits.bodyLimit} bytes`),
  };
  const pathParam = (name: string) => ({ name, in: "path", required: true, schema: { type: "string" } });
  return {
    openapi: "3.1.0",
    info: {
      title: "llamarec serving API",
      version,
      description:
        "LlamaRec recommendations over HTTP: LRURec retrieval from each user's incremental state, optional LLM ranking (verbalizer, one forward pass), events stored durably before they are acknowledged.",
    },
    paths: {
      "/v1/recommend": {
        post: {
          summary: "Top-k items for a user or a given history",
          requestBody: { required: true, content: { "application/json": { schema: s.recommendBody } } },
          responses: {
            "200": json(s.recommendResponse, "Recommendations, best first"),
            ...errors,
            "429": {
              ...json(s.error, "The ranking queue is full; retry after the Retry-After seconds"),
              headers: { "Retry-After": { schema: { type: "integer" } } },
            },
          },
        },
      },
      "/v1/events": {
        post: {
          summary: "Record one event or a batch; durable before the answer",
          requestBody: { required: true, content: { "application/json": { schema: s.eventsBody } } },
          responses: { "200": json(s.eventsResponse, "Stored"), ...errors },
        },
      },
      "/v1/items/{id}": {
        get: {
          summary: "An item of the catalogue",
          parameters: [pathParam("id")],
          responses: { "200": json(s.itemResponse, "The item"), "404": json(s.error, "Unknown item") },
        },
      },
      "/v1/users/{id}/history": {
        get: {
          summary: "A user's dataset history and recorded events",
          parameters: [pathParam("id")],
          responses: { "200": json(s.historyResponse, "The history") },
        },
      },
      "/healthz": { get: { summary: "The process is up", responses: { "200": json(s.status, "ok") } } },
      "/readyz": {
        get: {
          summary: "Models loaded and the store answering",
          responses: { "200": json(s.status, "ready"), "503": json(s.status, "not ready or shutting down") },
        },
      },
      "/metrics": {
        get: {
          summary: "Prometheus metrics",
          responses: { "200": { description: "Prometheus text format", content: { "text/plain": {} } } },
        },
      },
      "/openapi.json": {
        get: { summary: "This document", responses: { "200": { description: "OpenAPI 3.1" } } },
      },
    },
  };
}
