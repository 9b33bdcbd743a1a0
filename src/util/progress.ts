/**
 * Progress of a long step. On a TTY: one line redrawn in place (count/total, rate, ETA). Elsewhere
 * (CI, files, pipes): a plain log line at most every `intervalMs`, so logs stay readable.
 * Silent when the log level is below "info" (--quiet).
 *
 *   const p = progress("training", total); p.tick(); ... p.done();
 */
import { isEnabled, type LiveLine, releaseLiveLine, setLiveLine } from "./log.js";

export interface Progress {
  /** Count `n` more units done; `extra` (e.g. "loss 3.21") is shown after the counters. */
  tick(n?: number, extra?: string): void;
  /** Final line with the total time; further ticks are ignored. */
  done(extra?: string): void;
}

export interface ProgressOptions {
  stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Minimum time between non-TTY lines. */
  intervalMs?: number;
  /** Injected clock for tests. */
  now?: () => number;
  /** Force TTY rendering on or off. */
  tty?: boolean;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

function formatRate(perSecond: number): string {
  if (!Number.isFinite(perSecond)) return "?/s";
  return perSecond >= 100 ? `${Math.round(perSecond)}/s` : `${perSecond.toPrecision(3)}/s`;
}

export function progress(label: string, total?: number, options: ProgressOptions = {}): Progress {
  const stream = options.stream ?? process.stderr;
  const now = options.now ?? Date.now;
  const tty = options.tty ?? Boolean(stream.isTTY);
  const interval = options.intervalMs ?? (tty ? 100 : 5000);
  const enabled = isEnabled("info");
  const start = now();
  let count = 0;
  let lastDraw = start;
  let finished = false;
  let lastExtra = "";

  const line = (final: boolean): string => {
    const elapsed = (now() - start) / 1000;
    const rate = elapsed > 0 ? count / elapsed : Number.NaN;
    const parts = [label];
    if (total !== undefined && total > 0) {
      const pct = ((100 * count) / total).toFixed(1);
      parts.push(`${count}/${total} (${pct}%)`);
    } else {
      parts.push(String(count));
    }
    parts.push(formatRate(rate));
    if (final) parts.push(`in ${formatDuration(elapsed)}`);
    else if (total !== undefined && rate > 0) parts.push(`ETA ${formatDuration((total - count) / rate)}`);
    if (lastExtra) parts.push(lastExtra);
    return parts.join("  ");
  };

  const draw = (final: boolean) => {
    if (!enabled) return;
    if (tty) {
      const width = stream.columns ?? 120;
      stream.write(`\r\x1b[2K${line(final).slice(0, width - 1)}${final ? "\n" : ""}`);
    } else {
      stream.write(`${line(final)}\n`);
    }
  };

  // On a TTY, log lines clear the progress line first and redraw it after themselves.
  const liveLine: LiveLine = {
    clear: () => stream.write("\r\x1b[2K"),
    redraw: () => draw(false),
  };
  if (tty && enabled) setLiveLine(liveLine);

  return {
    tick(n = 1, extra) {
      if (finished) return;
      count += n;
      if (extra !== undefined) lastExtra = extra;
      const t = now();
      if (t - lastDraw >= interval) {
        lastDraw = t;
        draw(false);
      }
    },
    done(extra) {
      if (finished) return;
      finished = true;
      if (extra !== undefined) lastExtra = extra;
      releaseLiveLine(liveLine);
      draw(true);
    },
  };
}
