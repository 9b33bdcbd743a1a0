/**
 * Renders library events on the terminal: log lines through src/util/log.ts (level from --quiet/--verbose),
 * one progress line per task through src/util/progress.ts (count/total, rate, ETA; redrawn in place on a
 * TTY, a plain line every few seconds elsewhere). Metrics and artifacts are logged at debug level.
 */
import type { Events, ProgressEvent } from "./events.js";
import { log } from "./log.js";
import { type Progress, type ProgressOptions, progress } from "./progress.js";

export function consoleEvents(options: ProgressOptions = {}): Events {
  const bars = new Map<string, { bar: Progress; done: number; total: number | undefined }>();
  const onProgress = (e: ProgressEvent) => {
    let entry = bars.get(e.task);
    if (entry && entry.total !== e.total) {
      entry.bar.done();
      bars.delete(e.task);
      entry = undefined;
    }
    if (!entry) {
      // A resumed task starts at its checkpoint: the bar counts (and rates) this session's part only.
      const remaining = e.total === undefined ? undefined : e.total - e.done;
      entry = { bar: progress(e.task, remaining, options), done: e.done, total: e.total };
      bars.set(e.task, entry);
    }
    const delta = e.done - entry.done;
    entry.done = e.done;
    if (e.finished) {
      if (delta > 0) entry.bar.tick(delta, e.extra);
      entry.bar.done(e.extra);
      bars.delete(e.task);
    } else if (delta > 0 || e.extra !== undefined) {
      entry.bar.tick(Math.max(0, delta), e.extra);
    }
  };
  return {
    log: (level, message) => log[level](message),
    progress: onProgress,
    metric: (name, value, context) =>
      log.debug(`metric ${name} ${value}${context ? ` ${JSON.stringify(context)}` : ""}`),
    artifact: (name, path) => log.debug(`wrote ${name}: ${path}`),
  };
}
