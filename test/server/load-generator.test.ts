/**
 * The bench's open-loop load generator (bench/serve-load.ts): requests spread evenly over the step (not
 * sent in bursts), every request sent and counted, non-2xx counted, and latency measured from each request's
 * due time, so a server stall shows in every request that fell due during it (no coordinated omission).
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openLoop, quantile } from "../../bench/serve-load.js";

let server: Server;
let url: string;
let arrivals: number[] = [];
let stallAt = -1;
let n = 0;
beforeAll(async () => {
  server = createServer((req, res) => {
    arrivals.push(performance.now());
    n++;
    if (n === stallAt) {
      // Blocks this thread (server and generator alike) for 300 ms.
      const until = performance.now() + 300;
      while (performance.now() < until);
    }
    res.statusCode = req.url === "/fail" && n % 10 === 0 ? 500 : 200;
    res.end("ok");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe("open-loop load generator", () => {
  it("spreads the requests evenly over the step and answers every one", async () => {
    arrivals = [];
    n = 0;
    stallAt = -1;
    const r = await openLoop({ url, rate: 100, seconds: 2, method: "GET", path: "/ok" });
    expect(r.sent).toBe(200);
    expect(r.finished).toBe(200);
    expect(r.errors + r.timeouts + r.non2xx).toBe(0);
    expect(r.achieved).toBe(100);
    // Even pacing: each quarter of the step gets about a quarter of the requests (a burst would not).
    const t0 = arrivals[0]!;
    const quarters = [0, 0, 0, 0];
    for (const t of arrivals) quarters[Math.min(3, Math.floor((t - t0) / 500))]!++;
    for (const q of quarters) expect(q).toBeGreaterThan(30);
  });

  it("counts non-2xx answers", async () => {
    arrivals = [];
    n = 0;
    stallAt = -1;
    const r = await openLoop({ url, rate: 100, seconds: 1, method: "GET", path: "/fail" });
    expect(r.finished).toBe(100);
    expect(r.non2xx).toBeGreaterThanOrEqual(9);
    expect(r.non2xx).toBeLessThanOrEqual(11);
  });

  it("measures from the due time: a 300 ms stall delays every request due during it", async () => {
    arrivals = [];
    n = 0;
    stallAt = 30;
    const r = await openLoop({ url, rate: 100, seconds: 1, method: "GET", path: "/ok" });
    expect(r.finished).toBe(100);
    // About 30 requests fell due during the stall: with latency from the send time only the stalled one
    // would be slow; from the due time, about 20 of the 100 are over 100 ms.
    expect(r.latency.max).toBeGreaterThanOrEqual(290);
    expect(r.latency.p90).toBeGreaterThan(100);
  });

  it("nearest-rank quantiles", () => {
    const xs = Float64Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(quantile(xs, 0.5)).toBe(5);
    expect(quantile(xs, 0.99)).toBe(10);
    expect(quantile(xs, 0)).toBe(1);
    expect(Number.isNaN(quantile(new Float64Array(0), 0.5))).toBe(true);
  });
});
