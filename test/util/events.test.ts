import { describe, expect, it } from "vitest";
import { consoleEvents } from "../../src/util/console-events.js";
import { makeEvents, type ProgressEvent, startProgress, teeEvents } from "../../src/util/events.js";

describe("events", () => {
  it("startProgress reports absolute counts, the total and a last event", () => {
    const seen: ProgressEvent[] = [];
    const p = startProgress(makeEvents({ progress: (e) => seen.push(e) }), "task", 10, 4);
    p.tick(2, "loss 1.0");
    p.done();
    p.tick(); // ignored after done
    expect(seen).toEqual([
      { task: "task", done: 4, total: 10 },
      { task: "task", done: 6, total: 10, extra: "loss 1.0" },
      { task: "task", done: 6, total: 10, finished: true },
    ]);
  });

  it("teeEvents hands every event to both", () => {
    const a: string[] = [];
    const b: string[] = [];
    const ev = teeEvents(
      makeEvents({ log: (_l, m) => a.push(m), metric: (n) => a.push(n) }),
      makeEvents({ log: (_l, m) => b.push(m), artifact: (n) => b.push(n) }),
    );
    ev.log("info", "hello");
    ev.metric("val/NDCG@10", 0.1);
    ev.artifact("model", "/x");
    expect(a).toEqual(["hello", "val/NDCG@10"]);
    expect(b).toEqual(["hello", "model"]);
  });

  it("the console renderer draws a resumed task's remaining part with count, rate and ETA", () => {
    let text = "";
    let t = 0;
    const stream = {
      write(s: string) {
        text += s;
        return true;
      },
    } as unknown as NodeJS.WritableStream;
    const ev = consoleEvents({ stream, tty: false, intervalMs: 0, now: () => t });
    const p = startProgress(ev, "training", 100, 40);
    t = 1000;
    p.tick(10);
    t = 2000;
    p.done();
    expect(text).toContain("training  10/60 (16.7%)  10.0/s  ETA 5s");
    expect(text).toContain("training  10/60 (16.7%)  5.00/s  in 2s");
  });
});
