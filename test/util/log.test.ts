import { afterEach, describe, expect, it } from "vitest";
import { log, setLogLevel, setLogSink } from "../../src/util/log.js";

describe("log", () => {
  const lines: string[] = [];
  const prev = setLogSink({ write: (s: string) => lines.push(s) });
  afterEach(() => {
    lines.length = 0;
    setLogLevel("info");
  });

  it("filters by level and prefixes non-info lines", () => {
    log.debug("hidden");
    log.info("shown", 3, { a: 1 });
    log.warn("careful");
    setLogLevel("error");
    log.warn("hidden too");
    log.error(new Error("bad"));
    expect(lines).toEqual(['shown 3 {"a":1}\n', "warn: careful\n", "error: bad\n"]);
    setLogSink(prev);
  });
});
