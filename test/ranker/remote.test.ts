import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  letterScores,
  parseTopLogprobs,
  RemoteBackend,
  RemoteBackendError,
} from "../../src/ranker/backends/remote.js";

const LETTER_IDS = [319, 350, 315]; // "▁A", "▁B", "▁C" in Llama 2

/** Recorded-shape responses keyed by the first token id after BOS; behaviour switches per test. */
type Handler = (body: Record<string, unknown>, req: IncomingMessage, res: ServerResponse) => void;
let handler: Handler = () => {};
let server: Server;
let base = "";
const seen: Record<string, unknown>[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let data = "";
    req.on("data", (c) => {
      data += c;
    });
    req.on("end", () => {
      const body = JSON.parse(data) as Record<string, unknown>;
      seen.push({ ...body, path: req.url, auth: req.headers.authorization });
      handler(body, req, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

const json = (res: ServerResponse, status: number, value: unknown) => {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(value));
};

/** vLLM /v1/completions with return_tokens_as_token_ids: the answer is letter (first prompt id mod 3). */
const vllm: Handler = (body, _req, res) => {
  const prompt = body.prompt as number[];
  const best = prompt[1]! % 3;
  const top: Record<string, number> = { "token_id:13": -4 };
  LETTER_IDS.forEach((id, i) => {
    top[`token_id:${id}`] = i === best ? -0.1 : -3 - i;
  });
  json(res, 200, { choices: [{ index: 0, text: "A", logprobs: { top_logprobs: [top], tokens: ["A"] } }] });
};

describe("RemoteBackend against a local stub server", () => {
  it("sends token ids with max_tokens 1 and maps token-id logprobs to letters, in prompt order", async () => {
    handler = vllm;
    seen.length = 0;
    const backend = new RemoteBackend({
      url: base,
      model: "m",
      apiKey: "k",
      concurrency: 3,
      returnTokenIds: true,
    });
    const prompts = [1, 2, 3, 4, 5].map((x) => ({ ids: [1, x, 7], letterIds: LETTER_IDS }));
    const out = await backend.scorePrompts(prompts);
    expect(out).toHaveLength(5);
    out.forEach((scores, i) => {
      const best = prompts[i]!.ids[1]! % 3;
      expect(scores.indexOf(Math.max(...scores))).toBe(best);
      expect(scores[best]).toBeCloseTo(-0.1);
    });
    expect(seen[0]).toMatchObject({
      path: "/v1/completions",
      max_tokens: 1,
      logprobs: 20,
      model: "m",
      auth: "Bearer k",
      return_tokens_as_token_ids: true,
    });
    expect(seen.map((s) => (s.prompt as number[])[1]).sort()).toEqual([1, 2, 3, 4, 5]);
    await backend.close();
    await expect(backend.scorePrompts(prompts)).rejects.toThrow(/closed/);
  });

  it("letterBias: the same bias on every letter id and post-bias probabilities of a chain that cuts nothing", async () => {
    handler = vllm;
    seen.length = 0;
    const letterIds = Array.from({ length: 20 }, (_, i) => 319 + i);
    const backend = new RemoteBackend({ url: base, letterBias: 100, topLogprobs: 5 });
    await backend.scorePrompts([{ ids: [1, 2, 3], letterIds }]);
    expect(seen[0]).toMatchObject({
      max_tokens: 1,
      logprobs: 20, // at least one per letter, whatever topLogprobs says
      n_probs: 20,
      post_sampling_probs: true,
      samplers: ["temperature"],
      temperature: 1,
      top_k: 0,
      top_p: 1,
      min_p: 0,
    });
    expect(seen[0]!.logit_bias).toEqual(Object.fromEntries(letterIds.map((id) => [String(id), 100])));
    // Without letterBias, nothing of it is sent.
    seen.length = 0;
    await new RemoteBackend({ url: base }).scorePrompts([{ ids: [1, 2, 3], letterIds }]);
    expect(seen[0]).toMatchObject({ temperature: 0, logprobs: 20 });
    expect(seen[0]!.logit_bias).toBeUndefined();
    expect(seen[0]!.post_sampling_probs).toBeUndefined();
  });

  it("retries 503 and 429 with backoff, then succeeds", async () => {
    let calls = 0;
    handler = (body, req, res) => {
      calls++;
      if (calls === 1) return json(res, 503, { error: "loading" });
      if (calls === 2) return json(res, 429, { error: "slow down" });
      vllm(body, req, res);
    };
    const sleeps: number[] = [];
    const backend = new RemoteBackend({
      url: `${base}/v1`,
      backoffMs: 100,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    });
    const [scores] = await backend.scorePrompts([{ ids: [1, 1], letterIds: LETTER_IDS }]);
    expect(scores![1]).toBeCloseTo(-0.1);
    expect(backend.requests).toBe(3);
    expect(sleeps).toHaveLength(2);
    expect(sleeps[0]).toBeGreaterThanOrEqual(75);
    expect(sleeps[1]).toBeGreaterThanOrEqual(150);
  });

  it("fails fast on 400 with the server's message", async () => {
    handler = (_b, _r, res) => json(res, 400, { error: { message: "logprobs must be <= 5" } });
    const backend = new RemoteBackend({ url: base, sleep: async () => {} });
    const err = await backend.scorePrompts([{ ids: [1, 2], letterIds: LETTER_IDS }]).catch((e) => e);
    expect(err).toBeInstanceOf(RemoteBackendError);
    expect(err.message).toMatch(/HTTP 400.*logprobs must be <= 5/);
    expect(backend.requests).toBe(1);
  });

  it("gives up after the retries with a clear error", async () => {
    handler = (_b, _r, res) => json(res, 500, { error: "boom" });
    const backend = new RemoteBackend({ url: base, retries: 2, sleep: async () => {} });
    await expect(backend.scorePrompts([{ ids: [1, 2], letterIds: LETTER_IDS }])).rejects.toThrow(
      /HTTP 500.*gave up after 3 attempts/,
    );
  });

  it("times out a hanging server", async () => {
    handler = () => {}; // never answers
    const backend = new RemoteBackend({ url: base, retries: 0, timeoutMs: 100 });
    await expect(backend.scorePrompts([{ ids: [1, 2], letterIds: LETTER_IDS }])).rejects.toThrow(
      /timed out after 100 ms/,
    );
  });

  it("sends text when asked (server adds BOS)", async () => {
    seen.length = 0;
    handler = (_body, _r, res) => {
      json(res, 200, { choices: [{ logprobs: { top_logprobs: [{ " A": -1, B: -0.5 }] } }] });
    };
    const backend = new RemoteBackend({
      url: base,
      promptFormat: "text",
      decode: (ids) => `decoded:${ids.join(",")}`,
    });
    const [s] = await backend.scorePrompts([{ ids: [1, 2, 3], letterIds: LETTER_IDS }]);
    expect(seen[0]!.prompt).toBe("decoded:2,3");
    expect([...s!]).toEqual([-1, -0.5, -2]);
  });
});

describe("parseTopLogprobs and letterScores", () => {
  it("reads llama.cpp's OpenAI-style content entries by id", () => {
    const body = {
      choices: [
        {
          logprobs: {
            content: [
              {
                id: 319,
                token: " A",
                logprob: -0.2,
                top_logprobs: [
                  { id: 319, token: " A", logprob: -0.2 },
                  { id: 315, token: " C", logprob: -2 },
                  { id: 13, token: "\n", logprob: -3 },
                ],
              },
            ],
          },
        },
      ],
    };
    const entries = parseTopLogprobs(body);
    const s = letterScores(entries, LETTER_IDS, new Map());
    // B is missing: lowest listed (-3) minus 1.
    expect([...s].map((v) => Math.round(v * 10) / 10)).toEqual([-0.2, -4, -2]);
    expect(letterScores(entries, LETTER_IDS, new Map(), "-inf")[1]).toBe(Number.NEGATIVE_INFINITY);
    expect(letterScores(entries, LETTER_IDS, new Map(), -50)[1]).toBe(-50);
  });

  it("reads llama.cpp /completion probs (older builds) by text", () => {
    const entries = parseTopLogprobs({
      completion_probabilities: [{ probs: [{ tok_str: "B", prob: 0.5 }] }],
    });
    const s = letterScores(entries, LETTER_IDS, new Map(LETTER_IDS.map((id, i) => [id, "ABC"[i]!])));
    expect(s[1]).toBeCloseTo(Math.log(0.5));
    expect(s[0]).toBeCloseTo(Math.log(0.5) - 1);
  });

  it("names what is missing from a response", () => {
    expect(() => parseTopLogprobs({ choices: [{ text: "A" }] })).toThrow(/logprobs/);
    expect(() => parseTopLogprobs({ foo: 1 })).toThrow(/neither/);
    expect(() => parseTopLogprobs([])).toThrow(/not a JSON object/);
  });
});
