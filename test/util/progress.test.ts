import { afterEach, describe, expect, it } from "vitest";
import { log, setLogLevel, setLogSink } from "../../src/util/log.js";
import { formatDuration, progress } from "../../src/util/progress.js";

function fakeStream(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, stream: { isTTY, columns: 200, write: (s: string) => writes.push(s) > 0 } };
}

afterEach(() => setLogLevel("info"));

describe("progress", () => {
  it("prints plain lines at most every interval when not a TTY, then a final line", () => {
    let t = 0;
    const { writes, stream } = fakeStream(false);
    const p = progress("training", 100, { stream: stream as never, now: () => t, intervalMs: 5000 });
    for (let i = 0; i < 100; i++) {
      t += 100; // 10 items/s
      p.tick(1, `loss ${(1 / (i + 1)).toFixed(2)}`);
    }
    p.done();
    // 10 s in total: lines at 5 s and 10 s, plus the final one
    expect(writes).toHaveLength(3);
    expect(writes[0]).toBe("training  50/100 (50.0%)  10.0/s  ETA 5s  loss 0.02\n");
    expect(writes[2]).toBe("training  100/100 (100.0%)  10.0/s  in 10s  loss 0.01\n");
    p.tick();
    p.done();
    expect(writes).toHaveLength(3);
  });

  it("redraws one line in place on a TTY", () => {
    let t = 0;
    const { writes, stream } = fakeStream(true);
    const p = progress("ranking", undefined, { stream: stream as never, now: () => t });
    t = 1000;
    p.tick(5);
    p.done();
    expect(writes[0]).toBe("\r\x1b[2Kranking  5  5.00/s");
    expect(writes[1]).toBe("\r\x1b[2Kranking  5  5.00/s  in 1s\n");
  });

  it("keeps log lines off the TTY progress line", () => {
    let t = 0;
    const { writes, stream } = fakeStream(true);
    const prev = setLogSink(stream);
    try {
      const p = progress("ranking", 10, { stream: stream as never, now: () => t });
      t = 1000;
      p.tick(2);
      log.info("a message");
      p.done();
      log.info("after");
    } finally {
      setLogSink(prev);
    }
    expect(writes).toEqual([
      "\r\x1b[2Kranking  2/10 (20.0%)  2.00/s  ETA 4s",
      "\r\x1b[2K",
      "a message\n",
      "\r\x1b[2Kranking  2/10 (20.0%)  2.00/s  ETA 4s",
      "\r\x1b[2Kranking  2/10 (20.0%)  2.00/s  in 1s\n",
      "after\n",
    ]);
  });

  it("is silent under --quiet", () => {
    setLogLevel("warn");
    const { writes, stream } = fakeStream(false);
    const p = progress("x", 1, { stream: stream as never, intervalMs: 0 });
    p.tick();
    p.done();
    expect(writes).toEqual([]);
  });

  it("formats durations", () => {
    expect(formatDuration(59.4)).toBe("59s");
    expect(formatDuration(61)).toBe("1m01s");
    expect(formatDuration(3 * 3600 + 5 * 60)).toBe("3h05m");
    expect(formatDuration(Number.POSITIVE_INFINITY)).toBe("?");
  });
});
