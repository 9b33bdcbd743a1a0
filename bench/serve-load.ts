/**
 * Open-loop, fixed-rate HTTP load for `npm run bench -- serve` (the constant-throughput method of wrk2):
 * request i is due at t0 + i / rate whatever happened to the earlier ones, and its latency is measured from
 * that due time, not from when it could be sent, so a stalled server or a late generator shows up in the
 * latency (no coordinated omission). Every due request is sent and counted; percentiles are exact (sorted
 * samples, no histogram correction). The client is Node's own HTTP client (node:http, keep-alive agent).
 *
 * Why not autocannon's `overallRate`: autocannon 9 gives each connection a budget of rate/connections
 * requests per second, refilled by a 1 s interval, and each connection sends its budget back to back as
 * fast as the answers come (lib/httpClient.js `_doRequest`, `reqsMadeThisSecond`). So all of a second's
 * requests leave in a burst at the start of the second and queue behind each other (measured at 200/s:
 * 100% of the answers in the first half of each second, none after the first ~350 ms). And it records
 * each latency with `recordValueWithExpectedInterval(latency, ceil(1 / rate))`, an expected interval of
 * 1 ms instead of 1000 / rate ms, which adds a synthetic sample per millisecond of every answer (13,449
 * histogram samples for 934 answers): its percentiles are not those of the requests.
 */
import { Agent, request } from "node:http";

export interface LoadOptions {
  url: string;
  /** Requests per second, spaced evenly. */
  rate: number;
  seconds: number;
  method: "GET" | "POST";
  path: string;
  /** A JSON body per request (called when the request is sent). */
  body?: () => unknown;
  /** Per-request timeout; a timed-out request counts as an error with its elapsed time as latency. */
  timeoutMs?: number;
  /** Most sockets open at once (requests beyond wait in the agent's queue, their wait counted). */
  connections?: number;
}

export interface LoadResult {
  /** Requests due (= sent) and finished (answered, failed or timed out): always equal at the end. */
  sent: number;
  finished: number;
  /** Answers per second over the step (answers / seconds). */
  achieved: number;
  /** Latency from each request's due time to the end of its answer, ms, over every request. */
  latency: { p50: number; p90: number; p99: number; max: number; mean: number };
  /** How late the generator sent requests (send − due), ms: its own share of the latency. */
  sendLag: { p99: number; max: number };
  non2xx: number;
  errors: number;
  timeouts: number;
}

/** The q-quantile (nearest rank) of ascending samples. */
export function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export async function openLoop(opts: LoadOptions): Promise<LoadResult> {
  const { rate, seconds, method, path, body } = opts;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const total = Math.round(rate * seconds);
  const url = new URL(opts.url);
  const agent = new Agent({ keepAlive: true, maxSockets: opts.connections ?? 64 });
  const latencies = new Float64Array(total);
  const lags = new Float64Array(total);
  let finished = 0;
  let non2xx = 0;
  let errors = 0;
  let timeouts = 0;
  let sent = 0;
  let done!: () => void;
  const allDone = new Promise<void>((resolve) => {
    done = resolve;
  });
  const interval = 1000 / rate;
  const t0 = performance.now() + 5;
  const due = (i: number) => t0 + i * interval;

  const finish = (i: number, outcome: "ok" | "non2xx" | "error" | "timeout") => {
    latencies[i] = performance.now() - due(i);
    if (outcome === "non2xx") non2xx++;
    else if (outcome === "error") errors++;
    else if (outcome === "timeout") timeouts++;
    if (++finished === total) done();
  };

  const fire = (i: number) => {
    lags[i] = performance.now() - due(i);
    const payload = body ? JSON.stringify(body()) : undefined;
    let settled = false;
    const settle = (outcome: "ok" | "non2xx" | "error" | "timeout") => {
      if (settled) return;
      settled = true;
      finish(i, outcome);
    };
    const req = request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        method,
        path,
        headers: payload
          ? { "content-type": "application/json", "content-length": Buffer.byteLength(payload) }
          : {},
        timeout: timeoutMs,
      },
      (res) => {
        res.resume();
        const status = () => (res.statusCode! >= 200 && res.statusCode! < 300 ? "ok" : "non2xx");
        res.on("end", () => settle(status()));
        res.on("error", () => settle("error"));
        // An answer cut short (connection closed mid-body) ends with "close" and no "end".
        res.on("close", () => settle(res.complete ? status() : "error"));
      },
    );
    req.on("timeout", () => {
      settle("timeout");
      req.destroy();
    });
    req.on("error", () => settle("error"));
    req.end(payload);
  };

  // Sends every request whose due time has come, then sleeps until the next one is due.
  const tick = () => {
    const now = performance.now();
    while (sent < total && due(sent) <= now) fire(sent++);
    if (sent < total) setTimeout(tick, Math.max(0, due(sent) - performance.now()));
  };
  if (total === 0) done();
  else setTimeout(tick, 5);
  await allDone;
  agent.destroy();

  const sorted = latencies.slice().sort();
  const lagSorted = lags.slice().sort();
  let sum = 0;
  for (const l of latencies) sum += l;
  return {
    sent,
    finished,
    achieved: (finished - errors - timeouts) / seconds,
    latency: {
      p50: quantile(sorted, 0.5),
      p90: quantile(sorted, 0.9),
      p99: quantile(sorted, 0.99),
      max: sorted[sorted.length - 1] ?? Number.NaN,
      mean: sum / Math.max(1, total),
    },
    sendLag: { p99: quantile(lagSorted, 0.99), max: lagSorted[lagSorted.length - 1] ?? Number.NaN },
    non2xx,
    errors,
    timeouts,
  };
}
