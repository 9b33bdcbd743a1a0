/**
 * LLM ranking for the server: prompts micro-batched onto one ranker backend.
 *
 * A request's prompt waits at most `windowMs` for others to join its batch (a full batch of `batchSize`
 * leaves at once); one batch is on the backend at a time (llama.cpp spreads a batch over its sequences).
 * The default window is 0: a prompt goes to an idle backend at once, and the prompts that arrive while a
 * batch runs leave together as the next batch. At 20 requests/s on the tiny model, a 5 ms window rarely
 * caught a second prompt and only added its 5 ms.
 * At most `maxQueue` prompts wait; beyond that `submit` throws QueueFullError (HTTP 429). A prompt whose
 * answer is not back within its deadline resolves as a fallback (the caller keeps the retriever's order);
 * if it was still waiting it is dropped from the queue so no compute is spent on it.
 */
import type { PromptIds, RankerBackend } from "../ranker/backend.js";
import type { PromptBuilder } from "../ranker/prompt.js";
import { orderByScore } from "../ranker/rank.js";
import { logSoftmax, type Verbalizer } from "../ranker/verbalizer.js";

export interface RankingOptions {
  /** Prompts per backend call. Default 8. */
  batchSize?: number;
  /** How long the first prompt of a batch waits for more when the backend is idle. Default 0 ms. */
  windowMs?: number;
  /** Prompts allowed to wait. Default 64. */
  maxQueue?: number;
  /** Default deadline of one ranking, queueing included. Default 2000 ms. */
  deadlineMs?: number;
  onBatch?: (size: number, seconds: number) => void;
}

export class QueueFullError extends Error {
  override name = "QueueFullError";
  constructor(readonly retryAfterSeconds: number) {
    super("the ranking queue is full");
  }
}

export type RankOutcome =
  | { ok: true; order: number[]; scores: number[] }
  | { ok: false; reason: "deadline" | "error"; message: string };

interface Job {
  prompt: PromptIds;
  done: (outcome: RankOutcome) => void;
  settled: boolean;
  timer: NodeJS.Timeout;
}

/** What a ranking request needs: titles in, one prompt out. */
export interface RankerTools {
  readonly backend: RankerBackend;
  readonly prompts: PromptBuilder;
  readonly verbalizer: Verbalizer;
  /** History items shown in the prompt (paper: 20). */
  readonly maxHistory: number;
  /** Candidates per prompt (paper: 20). */
  readonly numCandidates: number;
}

export class RankingQueue {
  private readonly queue: Job[] = [];
  private busy = false;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  private readonly batchListeners: ((size: number, seconds: number) => void)[] = [];
  private readonly batchSize: number;
  private readonly windowMs: number;
  private readonly maxQueue: number;
  readonly deadlineMs: number;
  /** Moving average of a batch's seconds, for Retry-After. */
  private batchSeconds = 0.05;

  constructor(
    readonly tools: RankerTools,
    private readonly options: RankingOptions = {},
  ) {
    this.batchSize = Math.max(1, options.batchSize ?? 8);
    this.windowMs = Math.max(0, options.windowMs ?? 0);
    this.maxQueue = Math.max(1, options.maxQueue ?? 64);
    this.deadlineMs = Math.max(1, options.deadlineMs ?? 2000);
  }

  /** Also reports every batch to `listener` (the server's metrics). */
  addBatchListener(listener: (size: number, seconds: number) => void): void {
    this.batchListeners.push(listener);
  }

  get depth(): number {
    return this.queue.length;
  }

  /**
   * Ranks the candidates (item titles in retriever order) for the history titles (oldest first). Resolves
   * with the candidates' indices best first and their letter log-probs, or with a fallback.
   */
  rank(
    history: readonly string[],
    candidates: readonly string[],
    deadlineMs = this.deadlineMs,
  ): Promise<RankOutcome> {
    if (this.closed)
      return Promise.resolve({ ok: false, reason: "error", message: "the ranker is shutting down" });
    if (this.queue.length >= this.maxQueue) {
      const batchesAhead = Math.ceil(this.queue.length / this.batchSize) + 1;
      throw new QueueFullError(Math.max(1, Math.ceil(batchesAhead * this.batchSeconds)));
    }
    const built = this.tools.prompts.build({ history, candidates });
    const prompt: PromptIds = {
      ids: built.ids,
      letterIds: this.tools.verbalizer.ids.slice(0, candidates.length),
    };
    return new Promise<RankOutcome>((resolve) => {
      const job: Job = {
        prompt,
        settled: false,
        done: (outcome) => {
          if (job.settled) return;
          job.settled = true;
          clearTimeout(job.timer);
          resolve(outcome);
        },
        timer: setTimeout(() => {
          const i = this.queue.indexOf(job);
          if (i >= 0) this.queue.splice(i, 1);
          job.done({
            ok: false,
            reason: "deadline",
            message: `ranking missed its ${deadlineMs} ms deadline`,
          });
        }, deadlineMs),
      };
      this.queue.push(job);
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.busy || this.queue.length === 0) return;
    if (this.queue.length >= this.batchSize || this.windowMs === 0) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      void this.flush();
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        void this.flush();
      }, this.windowMs);
    }
  }

  private async flush(): Promise<void> {
    if (this.busy) return;
    const jobs = this.queue.splice(0, this.batchSize);
    if (jobs.length === 0) return this.notifyIdle();
    this.busy = true;
    const started = performance.now();
    try {
      const raw = await this.tools.backend.scorePrompts(jobs.map((j) => j.prompt));
      jobs.forEach((job, k) => {
        const letters = raw[k];
        if (!letters || letters.length !== job.prompt.letterIds.length || letters.some(Number.isNaN)) {
          job.done({
            ok: false,
            reason: "error",
            message: `ranker ${this.tools.backend.name} returned no usable scores`,
          });
          return;
        }
        const logProbs = logSoftmax(letters);
        const order = orderByScore(logProbs);
        job.done({ ok: true, order, scores: order.map((i) => logProbs[i]!) });
      });
    } catch (err) {
      for (const job of jobs)
        job.done({ ok: false, reason: "error", message: `ranker failed: ${(err as Error).message}` });
    } finally {
      const seconds = (performance.now() - started) / 1000;
      this.batchSeconds = 0.8 * this.batchSeconds + 0.2 * seconds;
      this.options.onBatch?.(jobs.length, seconds);
      for (const listener of this.batchListeners) listener(jobs.length, seconds);
      this.busy = false;
    }
    // Prompts that arrived during the batch have waited long enough: go again at once.
    if (this.queue.length > 0) void this.flush();
    else this.notifyIdle();
  }

  private notifyIdle(): void {
    if (this.busy || this.queue.length > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Stops taking prompts, lets the queued and in-flight ones finish, then closes the backend. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
      void this.flush();
    }
    if (this.busy || this.queue.length > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
    await this.tools.backend.close();
  }
}
