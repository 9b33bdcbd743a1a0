/**
 * `llamarec serve`: the HTTP API over a trained run (src/server), until SIGTERM/SIGINT, then a graceful
 * stop: no new requests, in-flight requests and queued rankings finish, the store closes.
 */
import { existsSync } from "node:fs";
import { runPaths } from "../../run/index.js";
import { resolveRunDir } from "../../run/paths.js";
import { createServer } from "../../server/app.js";
import { loadServing } from "../../server/load.js";
import { RANKER_KINDS, type RankerKind } from "../../server/ranker-setup.js";
import { DEFAULT_LIMITS, openApiDocument } from "../../server/schemas.js";
import { InputError } from "../../util/errors.js";
import { log } from "../../util/log.js";
import { parseIntArg, parsePositiveIntArg } from "../options.js";
import type { CommandSpec } from "../registry.js";

export const serveCommand: CommandSpec = {
  path: ["serve"],
  summary: "HTTP recommendation server over a trained run (events, incremental state, LLM ranking)",
  description:
    "POST /v1/recommend, POST /v1/events, GET /v1/items/:id, GET /v1/users/:id/history, /healthz, /readyz, " +
    "/metrics (Prometheus), /openapi.json. Events are stored durably (SQLite by default, PostgreSQL with " +
    "--store postgres://…) before the answer. --ranker defaults to llamacpp when the run has a trained " +
    "ranker, else none. Stops gracefully on SIGTERM.",
  configure(cmd) {
    cmd
      .option("--run <run>", "run folder (name under --runs-dir, or path)")
      .option("--runs-dir <folder>", "where run folders are (default runs)", "runs")
      .option("--ranker <kind>", `${RANKER_KINDS.join(" | ")} (default: llamacpp if the run has a ranker)`)
      .option("--ranker-model <file>", "ranker model .gguf (default: the run's trained ranker)")
      .option("--ranker-adapter <path>", "LoRA adapter (default: the run's; 'none' for the base model)")
      .option("--ranker-url <url>", "remote ranker: OpenAI-compatible server root")
      .option("--served-model <name>", "remote ranker: the model name the server expects")
      .option(
        "--threads <n>",
        "llama.cpp threads (default: LLAMAREC_THREADS, else min(2, cores))",
        parsePositiveIntArg,
      )
      .option("--sequences <n>", "llama.cpp parallel sequences (default 4)", parsePositiveIntArg)
      .option("--store <spec>", "sqlite:<file> or postgres://… (default sqlite:<run>/serve/events.sqlite)")
      .option("--host <host>", "listen address (default 127.0.0.1)", "127.0.0.1")
      .option("--port <n>", "listen port (default 8080; 0 = any free port)", parseIntArg)
      .option("--batch-size <n>", "prompts per ranker batch (default 8)", parsePositiveIntArg)
      .option(
        "--batch-window-ms <n>",
        "how long a prompt waits for others when the ranker is idle (default 0: prompts that arrive while a batch runs form the next one)",
        parseIntArg,
      )
      .option("--max-queue <n>", "prompts allowed to wait before 429 (default 64)", parsePositiveIntArg)
      .option(
        "--deadline-ms <n>",
        "ranking deadline; later answers fall back to retrieval (default 2000)",
        parseIntArg,
      )
      .option("--max-history <n>", "longest history in a request (default 2000)", parsePositiveIntArg)
      .option("--max-batch <n>", "most events per POST (default 1000)", parsePositiveIntArg)
      .option("--body-limit <bytes>", "largest request body (default 1048576)", parsePositiveIntArg)
      .option("--state-capacity <n>", "user states kept in memory (default 100000)", parsePositiveIntArg)
      .option("--openapi", "print the OpenAPI document and exit");
  },
  async run(ctx) {
    const o = ctx.opts;
    const limits = {
      ...(o.maxHistory ? { maxHistory: o.maxHistory as number } : {}),
      ...(o.maxBatch ? { maxBatch: o.maxBatch as number } : {}),
      ...(o.bodyLimit ? { bodyLimit: o.bodyLimit as number } : {}),
    };
    if (o.openapi) {
      ctx.out.write(`${JSON.stringify(openApiDocument({ ...DEFAULT_LIMITS, ...limits }), null, 2)}\n`);
      return;
    }
    if (!o.run) throw new InputError("--run <run> is required");
    const runDir = resolveRunDir(o.run as string, o.runsDir as string);
    let kind = o.ranker as RankerKind | undefined;
    if (kind !== undefined && !RANKER_KINDS.includes(kind))
      throw new InputError(`--ranker must be one of ${RANKER_KINDS.join(", ")}, got "${kind}"`);
    kind ??= existsSync(runPaths(runDir).ranker.config) ? "llamacpp" : "none";
    const port = (o.port as number | undefined) ?? 8080;
    if (!(port >= 0 && port < 65536)) throw new InputError(`--port must be 0..65535, got ${port}`);
    const services = await loadServing({
      runDir,
      ...(o.store ? { store: o.store as string } : {}),
      ranker:
        kind === "none"
          ? null
          : {
              kind,
              ...(o.rankerModel ? { model: o.rankerModel as string } : {}),
              ...(o.rankerAdapter ? { adapter: o.rankerAdapter as string } : {}),
              ...(o.rankerUrl ? { url: o.rankerUrl as string } : {}),
              ...(o.servedModel ? { servedModel: o.servedModel as string } : {}),
              ...(process.env.LLAMAREC_API_KEY ? { apiKey: process.env.LLAMAREC_API_KEY } : {}),
              ...(o.threads !== undefined ? { threads: o.threads as number } : {}),
              ...(o.sequences ? { sequences: o.sequences as number } : {}),
            },
      ranking: {
        ...(o.batchSize ? { batchSize: o.batchSize as number } : {}),
        ...(o.batchWindowMs !== undefined ? { windowMs: o.batchWindowMs as number } : {}),
        ...(o.maxQueue ? { maxQueue: o.maxQueue as number } : {}),
        ...(o.deadlineMs ? { deadlineMs: o.deadlineMs as number } : {}),
      },
      log: (line) => log.info(line),
    });
    const server = await createServer(services, {
      limits,
      ...(o.stateCapacity ? { stateCapacity: o.stateCapacity as number } : {}),
      onError: (message) => log.error(message),
    });
    let address: string;
    try {
      address = await server.app.listen({ host: o.host as string, port });
    } catch (err) {
      await server.close();
      throw new InputError(`cannot listen on ${o.host}:${port}: ${(err as Error).message}`);
    }
    // One line on stdout that scripts can wait for.
    ctx.out.write(`listening on ${address} (${services.description})\n`);
    await new Promise<void>((resolve, reject) => {
      const stop = (signal: string) => {
        process.off("SIGTERM", onTerm);
        process.off("SIGINT", onInt);
        log.info(`${signal}: finishing in-flight requests, then closing the store`);
        server.close().then(resolve, reject);
      };
      const onTerm = () => stop("SIGTERM");
      const onInt = () => stop("SIGINT");
      process.once("SIGTERM", onTerm);
      process.once("SIGINT", onInt);
    });
    log.info("stopped");
  },
};
