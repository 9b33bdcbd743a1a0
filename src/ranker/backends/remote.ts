/**
 * Ranker backend on an OpenAI-compatible completions server (vLLM, llama.cpp's llama-server, TGI …):
 * one POST /v1/completions per prompt with max_tokens 1, temperature 0 and logprobs = topLogprobs, then
 * the letters' log-probabilities are read off the returned top list.
 *
 * Response shapes understood (whichever the server sends):
 * - OpenAI legacy / vLLM: choices[0].logprobs.top_logprobs[0] = {"<token>": logprob, …}; with vLLM's
 *   return_tokens_as_token_ids the keys are "token_id:<id>" and are matched by id.
 * - llama.cpp (newer): choices[0].logprobs.content[0].top_logprobs = [{id, token, logprob}, …] (top_probs
 *   = [{id, token, prob}] with post_sampling_probs), or the
 *   native /completion shape completion_probabilities[0].top_logprobs (same entries) or .probs =
 *   [{tok_str, prob}] (older builds; converted with log).
 * Entries with a token id are matched by id; entries with only text are matched to a letter when the text,
 * whitespace trimmed, equals it (SentencePiece "A" and "▁A" both count; the larger logprob wins).
 *
 * Getting all 20 letters back. A random or weakly trained model rarely has every letter in its top 20, and
 * there are two ways to get them all without changing their relative scores:
 * - `letterBias`: the same logit bias on every letter id, so the letters fill the top of the list; the
 *   letter softmax is shift-invariant, so their log-softmax over the letters is unchanged. The server must
 *   report probabilities AFTER the bias: llama.cpp does with post_sampling_probs (sent here with a neutral
 *   sampler chain: only temperature 1, no top-k/top-p/min-p cut), vLLM with `--logprobs-mode
 *   processed_logprobs`. Scores then are letter log-probabilities (up to the mass left to other tokens).
 * - a large `topLogprobs` (e.g. the vocabulary size) where the server allows it (llama.cpp has no cap; vLLM
 *   `--max-logprobs`): every token comes back, letters included, as full-vocabulary log-probabilities.
 * Letters still absent from the list (servers that allow neither): the server only says they are less
 * likely than every listed token, so by default ("floor") they get (lowest listed logprob − 1), all equal,
 * below every listed letter; the ranking then keeps their input (retriever) order. `missing: "-inf"` gives
 * -Infinity instead, or a number gives that fixed score. Ask for at least as many logprobs as letters (vLLM
 * allows 20 by default, --max-logprobs raises it; OpenAI's own API caps at 5, too few for 20 candidates).
 *
 * Prompts are sent as token ids (vLLM and llama.cpp accept a list of ints) so the server scores exactly the
 * tokens the other backends score; `promptFormat: "text"` sends decoded text instead (the server then
 * tokenizes and adds BOS itself, which can differ at the edges).
 */
import { InputError } from "../../util/errors.js";
import type { PromptIds, RankerBackend } from "../backend.js";

export interface RemoteBackendOptions {
  /** Server root, e.g. http://127.0.0.1:8000 (the /v1/completions path is appended) or a full URL ending in /completions. */
  url: string;
  /** "model" field of the request (vLLM requires the served model name). */
  model?: string;
  apiKey?: string;
  /** Top logprobs requested; default 20. */
  topLogprobs?: number;
  /** Ask vLLM for "token_id:<id>" keys (return_tokens_as_token_ids), which match letters exactly. */
  returnTokenIds?: boolean;
  /** Also send llama.cpp's fields (n_probs; with letterBias post_sampling_probs and samplers); default true. */
  sendNProbs?: boolean;
  /**
   * Add this logit bias (e.g. 100) to every letter id so all letters come back in the top list, with the
   * server reporting post-bias probabilities (see the module comment). Off by default.
   */
  letterBias?: number;
  promptFormat?: "ids" | "text";
  /** Needed for promptFormat "text": ids (BOS dropped) to text. */
  decode?: (ids: readonly number[]) => string;
  /** Text of each letter id for servers that return only token text; default: id order = "A", "B", …. */
  letterTexts?: ReadonlyMap<number, string>;
  missing?: "floor" | "-inf" | number;
  /** Requests in flight at once; default 4. */
  concurrency?: number;
  /** Per-request timeout in ms; default 60 000. */
  timeoutMs?: number;
  /** Retries after the first attempt for network errors, timeouts, 408, 429 and 5xx; default 4. */
  retries?: number;
  /** First backoff in ms, doubled each retry (±25 % jitter); default 500. */
  backoffMs?: number;
  /** Injected for tests. */
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
}

/** The server at the URL the user gave is unreachable or misbehaves: one line, exit 2 in the CLI. */
export class RemoteBackendError extends InputError {
  override name = "RemoteBackendError";
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

/** One candidate token of the returned top list. */
export interface TopEntry {
  id?: number;
  text?: string;
  logprob: number;
}

function completionsUrl(url: string): string {
  const trimmed = url.replace(/\/+$/, "");
  if (/\/completions?$/.test(trimmed)) return trimmed;
  if (trimmed.endsWith("/v1")) return `${trimmed}/completions`;
  return `${trimmed}/v1/completions`;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function entriesFromArray(list: unknown[]): TopEntry[] {
  const out: TopEntry[] = [];
  for (const e of list) {
    if (!isRecord(e)) continue;
    const id = typeof e.id === "number" ? e.id : undefined;
    const text =
      typeof e.token === "string" ? e.token : typeof e.tok_str === "string" ? e.tok_str : undefined;
    let logprob: number | undefined;
    if (typeof e.logprob === "number") logprob = e.logprob;
    else if (typeof e.prob === "number") logprob = Math.log(e.prob);
    if (logprob === undefined) continue;
    out.push({ ...(id === undefined ? {} : { id }), ...(text === undefined ? {} : { text }), logprob });
  }
  return out;
}

/** The first generated position's top list from any supported response shape. */
export function parseTopLogprobs(body: unknown): TopEntry[] {
  if (!isRecord(body)) throw new RemoteBackendError("response is not a JSON object");
  const choices = body.choices;
  if (Array.isArray(choices) && isRecord(choices[0])) {
    const lp = choices[0].logprobs;
    if (!isRecord(lp))
      throw new RemoteBackendError("response has no choices[0].logprobs (did the server ignore logprobs?)");
    if (Array.isArray(lp.top_logprobs)) {
      const first = lp.top_logprobs[0];
      if (!isRecord(first))
        throw new RemoteBackendError("choices[0].logprobs.top_logprobs[0] is not an object");
      return Object.entries(first).flatMap(([key, value]): TopEntry[] => {
        if (typeof value !== "number") return [];
        const m = /^token_id:(\d+)$/.exec(key);
        return m ? [{ id: Number(m[1]), logprob: value }] : [{ text: key, logprob: value }];
      });
    }
    if (Array.isArray(lp.content) && isRecord(lp.content[0]) && Array.isArray(lp.content[0].top_logprobs)) {
      return entriesFromArray(lp.content[0].top_logprobs);
    }
    // llama.cpp with post_sampling_probs: the same entries with probabilities.
    if (Array.isArray(lp.content) && isRecord(lp.content[0]) && Array.isArray(lp.content[0].top_probs)) {
      return entriesFromArray(lp.content[0].top_probs);
    }
    throw new RemoteBackendError("choices[0].logprobs has neither top_logprobs nor content[0].top_logprobs");
  }
  const cp = body.completion_probabilities;
  if (Array.isArray(cp) && isRecord(cp[0])) {
    const first = cp[0];
    if (Array.isArray(first.top_logprobs)) return entriesFromArray(first.top_logprobs);
    if (Array.isArray(first.probs)) return entriesFromArray(first.probs);
  }
  throw new RemoteBackendError("response has neither choices[0].logprobs nor completion_probabilities");
}

/** Scores of `letterIds` from a top list (see the module comment for matching and missing letters). */
export function letterScores(
  entries: readonly TopEntry[],
  letterIds: readonly number[],
  letterTexts: ReadonlyMap<number, string>,
  missing: "floor" | "-inf" | number = "floor",
): Float32Array {
  const scores = new Float32Array(letterIds.length).fill(Number.NaN);
  const position = new Map<number, number>(letterIds.map((id, i) => [id, i]));
  const byText = new Map<string, number>();
  letterIds.forEach((id, i) => {
    const t = letterTexts.get(id);
    if (t !== undefined) byText.set(t.trim(), i);
  });
  let lowest = Number.POSITIVE_INFINITY;
  for (const e of entries) {
    lowest = Math.min(lowest, e.logprob);
    let i = e.id === undefined ? undefined : position.get(e.id);
    if (i === undefined && e.id === undefined && e.text !== undefined) {
      i = byText.get(e.text.replace(/▁/g, " ").trim());
    }
    if (i === undefined) continue;
    if (Number.isNaN(scores[i]!) || e.logprob > scores[i]!) scores[i] = e.logprob;
  }
  const fill =
    typeof missing === "number"
      ? missing
      : missing === "-inf" || lowest === Number.POSITIVE_INFINITY
        ? Number.NEGATIVE_INFINITY
        : lowest - 1;
  for (let i = 0; i < scores.length; i++) if (Number.isNaN(scores[i]!)) scores[i] = fill;
  return scores;
}

function retryable(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

export class RemoteBackend implements RankerBackend {
  readonly name = "remote";
  private readonly endpoint: string;
  private readonly fetchImpl: typeof fetch;
  private readonly sleep: (ms: number) => Promise<void>;
  private closed = false;
  /** Requests sent, including retries (for logs and tests). */
  requests = 0;

  constructor(private readonly options: RemoteBackendOptions) {
    this.endpoint = completionsUrl(options.url);
    this.fetchImpl = options.fetch ?? fetch;
    this.sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    if (options.promptFormat === "text" && !options.decode) {
      throw new RemoteBackendError('promptFormat "text" needs a decode function (the tokenizer)');
    }
  }

  async scorePrompts(prompts: readonly PromptIds[]): Promise<Float32Array[]> {
    if (this.closed) throw new RemoteBackendError("remote backend is closed");
    const results: Float32Array[] = new Array(prompts.length);
    let next = 0;
    const worker = async () => {
      while (next < prompts.length) {
        const i = next++;
        results[i] = await this.scoreOne(prompts[i]!);
      }
    };
    const n = Math.max(1, Math.min(this.options.concurrency ?? 4, prompts.length));
    await Promise.all(Array.from({ length: n }, worker));
    return results;
  }

  private letterTextsFor(letterIds: readonly number[]): ReadonlyMap<number, string> {
    if (this.options.letterTexts) return this.options.letterTexts;
    return new Map(letterIds.map((id, i) => [id, String.fromCharCode(65 + i)]));
  }

  private requestBody(prompt: PromptIds): Record<string, unknown> {
    const bias = this.options.letterBias;
    const top = Math.max(this.options.topLogprobs ?? 20, bias === undefined ? 0 : prompt.letterIds.length);
    const ids = [...prompt.ids];
    const body: Record<string, unknown> = {
      prompt: this.options.promptFormat === "text" ? this.options.decode!(ids.slice(1)) : ids,
      max_tokens: 1,
      temperature: 0,
      logprobs: top,
    };
    if (this.options.model !== undefined) body.model = this.options.model;
    const llamaCppFields = this.options.sendNProbs ?? true;
    if (llamaCppFields) body.n_probs = top;
    if (bias !== undefined) {
      body.logit_bias = Object.fromEntries(prompt.letterIds.map((id) => [String(id), bias]));
      // Post-bias probabilities of a chain that cuts nothing: temperature 1 (a greedy chain reports no
      // distribution), no top-k / top-p / min-p. The one sampled token is not used.
      Object.assign(body, { temperature: 1, top_k: 0, top_p: 1, min_p: 0, seed: 0 });
      if (llamaCppFields) Object.assign(body, { post_sampling_probs: true, samplers: ["temperature"] });
    }
    if (this.options.returnTokenIds) body.return_tokens_as_token_ids = true;
    return body;
  }

  private async scoreOne(prompt: PromptIds): Promise<Float32Array> {
    const body = JSON.stringify(this.requestBody(prompt));
    const retries = this.options.retries ?? 4;
    const timeoutMs = this.options.timeoutMs ?? 60_000;
    let backoff = this.options.backoffMs ?? 500;
    let lastError: RemoteBackendError | undefined;
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0) {
        await this.sleep(backoff * (0.75 + 0.5 * Math.random()));
        backoff *= 2;
      }
      this.requests++;
      let response: Response;
      try {
        response = await this.fetchImpl(this.endpoint, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            ...(this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {}),
          },
          body,
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (err) {
        const e = err as Error;
        // fetch says only "fetch failed"; the cause names it (ECONNREFUSED, ENOTFOUND, …).
        const cause = (e as { cause?: { code?: string; message?: string } }).cause;
        const why =
          e.name === "TimeoutError"
            ? `timed out after ${timeoutMs} ms`
            : `${e.message}${(cause?.code ?? cause?.message) ? ` (${cause.code ?? cause.message})` : ""}`;
        lastError = new RemoteBackendError(`POST ${this.endpoint}: ${why}`);
        continue;
      }
      const text = await response.text().catch(() => "");
      if (!response.ok) {
        const err = new RemoteBackendError(
          `POST ${this.endpoint}: HTTP ${response.status}: ${text.slice(0, 300)}`,
          response.status,
        );
        if (!retryable(response.status)) throw err;
        lastError = err;
        continue;
      }
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        throw new RemoteBackendError(`POST ${this.endpoint}: response is not JSON: ${text.slice(0, 200)}`);
      }
      const entries = parseTopLogprobs(json);
      return letterScores(
        entries,
        prompt.letterIds,
        this.letterTextsFor(prompt.letterIds),
        this.options.missing,
      );
    }
    throw new RemoteBackendError(
      `${lastError?.message ?? "request failed"} (gave up after ${retries + 1} attempts)`,
      lastError?.status,
    );
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
