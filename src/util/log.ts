/**
 * Leveled logger to stderr (stdout stays clean for results and tables). The CLI sets the level from
 * --quiet / --verbose; library code just calls log.info(...).
 */
export type LogLevel = "error" | "warn" | "info" | "debug";

const ORDER: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

export interface LogSink {
  write(text: string): unknown;
}

let level: LogLevel = "info";
let sink: LogSink = process.stderr;

export function setLogLevel(next: LogLevel): void {
  level = next;
}

/** Redirect output (tests capture it); returns the previous sink. */
export function setLogSink(next: LogSink): LogSink {
  const prev = sink;
  sink = next;
  return prev;
}

export function isEnabled(at: LogLevel): boolean {
  return ORDER[at] <= ORDER[level];
}

/** A progress line being redrawn in place on the terminal; log lines must not land in the middle of it. */
export interface LiveLine {
  clear(): void;
  redraw(): void;
}

let live: LiveLine | null = null;

export function setLiveLine(line: LiveLine): void {
  live = line;
}

/** Stop treating `line` as live (no-op if another line has taken over). */
export function releaseLiveLine(line: LiveLine): void {
  if (live === line) live = null;
}

function emit(at: LogLevel, args: unknown[]): void {
  if (!isEnabled(at)) return;
  live?.clear();
  const text = args.map((a) =>
    typeof a === "string" ? a : a instanceof Error ? a.message : JSON.stringify(a),
  );
  const prefix = at === "info" ? "" : `${at}: `;
  sink.write(`${prefix}${text.join(" ")}\n`);
  live?.redraw();
}

export const log = {
  error: (...args: unknown[]) => emit("error", args),
  warn: (...args: unknown[]) => emit("warn", args),
  info: (...args: unknown[]) => emit("info", args),
  debug: (...args: unknown[]) => emit("debug", args),
};
