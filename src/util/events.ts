/**
 * How library code reports: an events object handed in by the caller, never a global logger. The CLI
 * renders it (logs on stderr, progress bars with rate and ETA: src/util/console-events.ts), the pipeline
 * records metrics and artifacts for the report, a server logs; tests collect it.
 *
 *   const events = opts.events ?? NO_EVENTS;
 *   events.log("info", "resuming at iteration 40");
 *   const p = startProgress(events, "training", total); p.tick(1, "loss 3.2"); p.done();
 *   events.metric("val/Recall@10", 0.12, { step: 40 });
 *   events.artifact("retriever.model", path);
 */
export type EventLevel = "error" | "warn" | "info" | "debug";

export interface ProgressEvent {
  /** What is being done, e.g. "training retriever"; also the key that ties updates of one task together. */
  task: string;
  /** Units done so far (absolute). */
  done: number;
  /** Units in all, when known. */
  total?: number;
  /** Short status after the counters, e.g. "loss 3.21". */
  extra?: string;
  /** True on the task's last event. */
  finished?: boolean;
}

export interface MetricContext {
  step?: number;
  split?: string;
  stage?: string;
}

export interface Events {
  log(level: EventLevel, message: string): void;
  progress(event: ProgressEvent): void;
  metric(name: string, value: number, context?: MetricContext): void;
  /** A file or folder a stage wrote (name like "retriever.model"). */
  artifact(name: string, path: string): void;
}

export const NO_EVENTS: Events = {
  log() {},
  progress() {},
  metric() {},
  artifact() {},
};

/** An Events object from the handlers given; the others do nothing. */
export function makeEvents(handlers: Partial<Events>): Events {
  return { ...NO_EVENTS, ...handlers };
}

/** Both receive every event (e.g. the CLI's renderer and the pipeline's recorder). */
export function teeEvents(a: Events, b: Events): Events {
  return {
    log: (level, message) => {
      a.log(level, message);
      b.log(level, message);
    },
    progress: (event) => {
      a.progress(event);
      b.progress(event);
    },
    metric: (name, value, context) => {
      a.metric(name, value, context);
      b.metric(name, value, context);
    },
    artifact: (name, path) => {
      a.artifact(name, path);
      b.artifact(name, path);
    },
  };
}

export interface ProgressHandle {
  tick(n?: number, extra?: string): void;
  done(extra?: string): void;
}

/** Counting helper for library loops: emits a progress event per tick (renderers throttle drawing). */
export function startProgress(events: Events, task: string, total?: number, start = 0): ProgressHandle {
  let done = start;
  let finished = false;
  const emit = (extra: string | undefined, last: boolean) =>
    events.progress({
      task,
      done,
      ...(total === undefined ? {} : { total }),
      ...(extra === undefined ? {} : { extra }),
      ...(last ? { finished: true } : {}),
    });
  emit(undefined, false);
  return {
    tick(n = 1, extra) {
      if (finished) return;
      done += n;
      emit(extra, false);
    },
    done(extra) {
      if (finished) return;
      finished = true;
      emit(extra, true);
    },
  };
}
