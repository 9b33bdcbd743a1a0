/** Timing helpers shared by the benchmarks: medians, and wall + CPU time of repeated synchronous calls. */

/** Median of the samples (mean of the two middle ones for an even count; NaN when empty). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * Median wall time and median CPU time (user + system of all threads of this process) of n calls, in ms.
 * CPU time shows what a call costs when other processes compete for the cores; wall time is what a user waits.
 */
export function timeCalls(fn: () => void, n: number): { wall: number; cpu: number } {
  const walls: number[] = [];
  const cpus: number[] = [];
  for (let i = 0; i < n; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    fn();
    walls.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpus.push((c.user + c.system) / 1000);
  }
  return { wall: median(walls), cpu: median(cpus) };
}
