/**
 * Scores every item of a catalogue for one user vector: scores[i] = bias[i] + E[i]·h. This is the
 * retrieval step of serving (LRURec scores = last hidden · item embeddingᵀ + item bias), and at catalogue
 * scale it is the whole cost: 1,000,000 items × d 64 is 256 MB of float32 read per request.
 *
 * The item table is copied once into the (shared) memory of a small WebAssembly SIMD module
 * (catalogue-scorer-build.ts), which then reads it in place for every request: the general GEMM kernels copy
 * their operands into the wasm heap on every call, which at this size costs more than the arithmetic. Rows
 * are handed out in chunks through a shared counter, so a helper thread (src/tensor/kernels/wasm-thread.ts,
 * the tensor kernels' mechanism) scores part of them when `threads` is 2; the values never depend on who
 * scored a row. Without WebAssembly SIMD the same loop runs in JavaScript on one thread. Summation order
 * differs from the GEMM's, so scores agree with `scoreNext` to float rounding (~1e-6 relative).
 *
 * Top-k (`top`): exactly the items and scores of `topItems(score(h), k, excluded)`, found faster on large
 * catalogues (`quantized`, default from 65,536 rows) by reading a quarter of the bytes. An int8 copy of the
 * table (per row i: q_ik = round(E_ik / s_i), s_i = max_k |E_ik| / 127) and an int16 copy of h (step t)
 * give a_i = b_i + s_i·t·Σ q_ik·hq_k (an exact integer dot product) with
 *   |score_i − a_i| ≤ s_i·(‖h‖₁/2 + 127·t·d/2) + float rounding of both sides = δ_i,
 * the rounding taken as eps·(|b_i| + 127·s_i·(‖h‖₁ + t·d)), eps = 1e-5 + d·1e-7 (several times the worst
 * case of d float32 additions). T = the (k + |excluded|)-th largest lower bound a_i − δ_i over all rows
 * (kept in a min-heap per thread inside the kernel) leaves at least k allowed rows with a lower bound ≥ T,
 * so T is at most the exact k-th best allowed score, and every row of the exact top k (ties included) has
 * a_i + δ_i ≥ T: those rows (the shortlist, typically a few dozen) are rescored with the float32 kernel's own per-row arithmetic,
 * bit for bit the scores `score` gives, and the best k of them are the answer, ties to the lower index.
 */

import { type WasmMemory, type WasmModule, WebAssemblyApi } from "../tensor/kernels/wasm-api.js";
import { KernelThread } from "../tensor/kernels/wasm-thread.js";
import { threadCount } from "../util/threads.js";
import { SCORER_WASM_BASE64 } from "./catalogue-scorer-wasm.generated.js";

const PAGE = 65536;
/** Rows per piece of work handed out through the shared counter. */
const CHUNK = 16384;
const EXPORTS = ["scoreChunks", "scoreList", "boundChunks", "collectAbove"] as const;
/** Largest k + |excluded| for the bounds path (its per-thread heaps of lower bounds). */
const HEAP_MAX = 65536;

interface ScorerExports {
  scoreChunks(
    E: number,
    bias: number,
    x: number,
    out: number,
    n: number,
    d: number,
    chunk: number,
    counter: number,
  ): void;
  scoreList(E: number, bias: number, x: number, rows: number, m: number, d: number, out: number): void;
  boundChunks(
    Q: number,
    scale: number,
    bias: number,
    xq: number,
    step: number,
    A: number,
    eps: number,
    upper: number,
    n: number,
    d: number,
    chunk: number,
    counter: number,
    heap: number,
    K: number,
  ): void;
  collectAbove(upper: number, n: number, T: number, rows: number): number;
}

export interface CatalogueScorerOptions {
  /** Threads scoring one request: 1 or 2. Default: the one thread setting (src/util/threads.ts), at most 2. */
  threads?: number;
  /** Keep an int8 copy of the table for `top` (a quarter of the bytes per request). Default: rows ≥ 65,536. */
  quantized?: boolean;
}

export interface TopItems {
  /** Row indices, best first (ties: lower index first). */
  items: number[];
  scores: number[];
}

/** What the last `top` call did (for benchmarks and tests). */
export interface TopStats {
  path: "exact" | "bounds";
  /** Rows rescored exactly (bounds path). */
  shortlist: number;
}

interface WasmParts {
  ex: ScorerExports;
  memory: WasmMemory;
  module: WasmModule;
  eOff: number;
  bOff: number;
  xOff: number;
  outOff: number;
  counterOff: number;
  width: number;
  q: null | {
    qOff: number;
    sOff: number;
    xqOff: number;
    uOff: number;
    rowsOff: number;
    listOff: number;
    /** Two heaps (caller, helper) of HEAP_MAX floats, each after a 16-byte header holding its size. */
    heapOff: number;
    width: number;
  };
}

export class CatalogueScorer {
  /** Rows scored (items + the padding row 0). */
  readonly rows: number;
  /** Width of the user vector. */
  readonly dim: number;
  readonly backend: "wasm-simd" | "js";
  readonly threads: number;
  readonly quantized: boolean;
  lastTop: TopStats = { path: "exact", shortlist: 0 };
  private readonly w: WasmParts | null;
  private readonly js: { E: Float32Array; b: Float32Array; out: Float32Array } | null;
  private helper: KernelThread | null = null;
  private helperFailed = false;
  /** Calls left on one thread after the helper stalled a call, and the next such pause. */
  private skipHelper = 0;
  private pause = 8;

  /**
   * @param table [rows × dim] row-major item vectors (copied)
   * @param bias [rows] (copied); zeros when null
   */
  constructor(
    table: Float32Array,
    bias: Float32Array | null,
    rows: number,
    dim: number,
    options: CatalogueScorerOptions = {},
  ) {
    if (table.length !== rows * dim)
      throw new RangeError(`scorer: table of ${table.length} for ${rows}×${dim}`);
    if (bias && bias.length !== rows) throw new RangeError(`scorer: bias of ${bias.length} for ${rows} rows`);
    this.rows = rows;
    this.dim = dim;
    this.threads = Math.min(2, threadCount(options.threads));
    // The int8 × int16 dot products must fit in int32: 127 · 32767 · width < 2³¹ up to width 512.
    const quantized = (options.quantized ?? rows >= 65536) && dim <= 512;
    this.w = CatalogueScorer.tryWasm(table, bias, rows, dim, quantized);
    if (this.w) {
      this.backend = "wasm-simd";
      this.js = null;
      this.quantized = this.w.q !== null;
      // Started now (it blocks until ready) rather than inside the first request.
      if (this.threads > 1 && rows > 2 * CHUNK) this.helperThread();
    } else {
      this.backend = "js";
      this.quantized = false;
      this.js = {
        E: table.slice(),
        b: bias ? bias.slice() : new Float32Array(rows),
        out: new Float32Array(rows),
      };
    }
  }

  private static tryWasm(
    table: Float32Array,
    bias: Float32Array | null,
    rows: number,
    dim: number,
    quantized: boolean,
  ): WasmParts | null {
    let module: WasmModule;
    try {
      module = new WebAssemblyApi.Module(Buffer.from(SCORER_WASM_BASE64, "base64"));
    } catch {
      return null; // no WebAssembly SIMD or threads in this runtime
    }
    const width = Math.ceil(dim / 4) * 4; // rows padded with zeros to whole SIMD lanes
    const qWidth = Math.ceil(dim / 16) * 16; // int8 rows: whole 16-byte vectors
    const align = (n: number) => Math.ceil(n / 16) * 16;
    const counterOff = 1024;
    const eOff = PAGE;
    const bOff = align(eOff + rows * width * 4);
    const xOff = align(bOff + rows * 4);
    const outOff = align(xOff + width * 4);
    let end = outOff + rows * 4;
    let q: WasmParts["q"] = null;
    if (quantized) {
      const qOff = align(end);
      const sOff = align(qOff + rows * qWidth);
      const xqOff = align(sOff + rows * 4);
      const uOff = align(xqOff + qWidth * 2);
      const rowsOff = align(uOff + rows * 4);
      const listOff = align(rowsOff + rows * 4);
      const heapOff = align(listOff + rows * 4);
      end = heapOff + 2 * (16 + HEAP_MAX * 4);
      q = { qOff, sOff, xqOff, uOff, rowsOff, listOff, heapOff, width: qWidth };
    }
    const pages = Math.ceil(end / PAGE) + 1;
    if (pages > 65536) return null; // over 4 GiB: wasm32 cannot address it
    let memory: WasmMemory;
    try {
      memory = new WebAssemblyApi.Memory({ initial: pages, maximum: pages, shared: true });
    } catch {
      return null;
    }
    const ex = new WebAssemblyApi.Instance(module, { env: { memory } }).exports as unknown as ScorerExports;
    const buf = memory.buffer;
    const E = new Float32Array(buf, eOff, rows * width);
    if (width === dim) E.set(table);
    else for (let i = 0; i < rows; i++) E.set(table.subarray(i * dim, (i + 1) * dim), i * width);
    if (bias) new Float32Array(buf, bOff, rows).set(bias);
    if (q) {
      const Q = new Int8Array(buf, q.qOff, rows * qWidth);
      const S = new Float32Array(buf, q.sOff, rows);
      for (let i = 0; i < rows; i++) {
        let m = 0;
        for (let k = 0; k < dim; k++) m = Math.max(m, Math.abs(table[i * dim + k]!));
        const s = Math.fround(m / 127);
        S[i] = s;
        if (s === 0) continue;
        for (let k = 0; k < dim; k++) {
          const v = Math.round(table[i * dim + k]! / s);
          Q[i * qWidth + k] = Math.max(-127, Math.min(127, v));
        }
      }
    }
    return { ex, memory, module, eOff, bOff, xOff, outOff, counterOff, width, q };
  }

  /**
   * Runs a chunked kernel here, with the helper thread taking chunks too when there are 2 threads; the
   * helper's arguments may differ (its own heap).
   */
  private chunked(name: "scoreChunks" | "boundChunks", args: number[], helperArgs = args): void {
    const w = this.w!;
    const counter = new Int32Array(w.memory.buffer, w.counterOff, 1);
    Atomics.store(counter, 0, 0);
    // On a machine with more runnable jobs than cores the helper can be descheduled holding a chunk, and the
    // caller then waits for it: when it waited longer than it worked (and over 1 ms), the next `pause` calls
    // run on one thread, the pause doubling with each stall in a row (as the tensor kernels do, wasm.ts).
    let helper: KernelThread | null = null;
    if (this.skipHelper > 0) this.skipHelper--;
    else if (this.threads > 1 && this.rows > 2 * CHUNK) helper = this.helperThread();
    helper?.post(name, helperArgs);
    const t0 = performance.now();
    let t1 = t0;
    try {
      (w.ex[name] as (...a: number[]) => void)(...args);
    } finally {
      t1 = performance.now();
      helper?.finish();
    }
    if (!helper) return;
    const waited = performance.now() - t1;
    if (waited > 1 && waited > t1 - t0) {
      this.skipHelper = this.pause;
      this.pause = Math.min(this.pause * 2, 512);
    } else this.pause = 8;
  }

  private helperThread(): KernelThread | null {
    if (this.helperFailed) return null;
    try {
      this.helper ??= new KernelThread(this.w!.module, this.w!.memory, EXPORTS);
    } catch {
      this.helperFailed = true; // one thread rather than no answer
      return null;
    }
    return this.helper;
  }

  /**
   * Scores of every row for the user vector `hidden` [dim]. The result is the scorer's own buffer,
   * overwritten by the next call: read it (or copy it) before scoring again.
   */
  score(hidden: Float32Array): Float32Array {
    if (hidden.length !== this.dim)
      throw new RangeError(`scorer: vector of ${hidden.length}, expected ${this.dim}`);
    const w = this.w;
    if (!w) {
      const { E, b, out } = this.js!;
      const { rows, dim } = this;
      for (let i = 0, o = 0; i < rows; i++, o += dim) {
        let a = 0;
        for (let k = 0; k < dim; k++) a += E[o + k]! * hidden[k]!;
        out[i] = b[i]! + a;
      }
      return out;
    }
    new Float32Array(w.memory.buffer, w.xOff, this.dim).set(hidden);
    this.chunked("scoreChunks", [w.eOff, w.bOff, w.xOff, w.outOff, this.rows, w.width, CHUNK, w.counterOff]);
    return new Float32Array(w.memory.buffer, w.outOff, this.rows);
  }

  /**
   * The `k` best rows 1… (row 0 is the padding item) outside `excluded`, best first, ties to the lower
   * index: exactly `topItems(score(hidden), k, excluded)` (src/retrievers/evaluate.ts).
   */
  top(hidden: Float32Array, k: number, excluded: ReadonlySet<number>): TopItems {
    if (hidden.length !== this.dim)
      throw new RangeError(`scorer: vector of ${hidden.length}, expected ${this.dim}`);
    const w = this.w;
    if (!w?.q || k <= 0 || k + excluded.size > HEAP_MAX) {
      this.lastTop = { path: "exact", shortlist: 0 };
      const all = this.score(hidden);
      return selectTop(
        k,
        excluded,
        this.rows - 1,
        (j) => j + 1,
        (j) => all[j + 1]!,
      );
    }
    const q = w.q;
    const buf = w.memory.buffer;
    const d = this.dim;
    // int16 copy of h: step t, |h_k − t·hq_k| ≤ t/2.
    let maxAbs = 0;
    let l1 = 0;
    for (let j = 0; j < d; j++) {
      const a = Math.abs(hidden[j]!);
      maxAbs = Math.max(maxAbs, a);
      l1 += a;
    }
    const step = maxAbs > 0 ? Math.fround(maxAbs / 32767) : 1;
    const xq = new Int16Array(buf, q.xqOff, q.width);
    for (let j = 0; j < d; j++) xq[j] = Math.max(-32767, Math.min(32767, Math.round(hidden[j]! / step)));
    const eps = 1e-5 + d * 1e-7;
    const A = l1 / 2 + (127 * step * d) / 2 + eps * 127 * (l1 + step * d);
    // Each thread keeps the K largest lower bounds of its rows; K = k + |excluded| so that, whichever rows
    // are excluded, k allowed rows have a lower bound ≥ T (the K-th largest overall): T ≤ the k-th best score.
    const K = k + excluded.size;
    const heaps = [q.heapOff, q.heapOff + 16 + HEAP_MAX * 4];
    for (const h of heaps) new Int32Array(buf, h + 12, 1)[0] = 0; // heap size, just before its values
    const args = (heap: number) => [
      q.qOff,
      q.sOff,
      w.bOff,
      q.xqOff,
      step,
      // Rounded up to float32 so the kernel's bound is never below the one derived here.
      nextUp(A),
      nextUp(eps),
      q.uOff,
      this.rows,
      q.width,
      CHUNK,
      w.counterOff,
      heap + 16,
      K,
    ];
    this.chunked("boundChunks", args(heaps[0]!), args(heaps[1]!));
    const best: number[] = [];
    for (const h of heaps) {
      const size = new Int32Array(buf, h + 12, 1)[0]!;
      for (const v of new Float32Array(buf, h + 16, size)) best.push(v);
    }
    best.sort((a, b) => b - a);
    const T = best.length >= K ? best[K - 1]! : Number.NEGATIVE_INFINITY;
    // The shortlist: allowed rows whose upper bound reaches T, in index order; rescored exactly.
    const found = w.ex.collectAbove(q.uOff, this.rows, T, q.rowsOff);
    const list = new Int32Array(buf, q.rowsOff, found);
    let m = 0;
    for (let j = 0; j < found; j++) if (!excluded.has(list[j]!)) list[m++] = list[j]!;
    new Float32Array(buf, w.xOff, d).set(hidden);
    w.ex.scoreList(w.eOff, w.bOff, w.xOff, q.rowsOff, m, w.width, q.listOff);
    const exact = new Float32Array(buf, q.listOff, m);
    this.lastTop = { path: "bounds", shortlist: m };
    return selectTop(
      k,
      new Set(),
      m,
      (j) => list[j]!,
      (j) => exact[j]!,
    );
  }

  /** Stops the helper thread (it never keeps the process alive either way). */
  dispose(): void {
    this.helper?.dispose();
    this.helper = null;
  }
}

/** The smallest float32 ≥ x (x finite, ≥ 0). */
function nextUp(x: number): number {
  const f = Math.fround(x);
  if (f >= x) return f;
  const b = new Float32Array([f]);
  new Uint32Array(b.buffer)[0]! += 1;
  return b[0]!;
}

/**
 * Best `k` of `n` entries (entry j: row `row(j)`, score `value(j)`, in increasing row order), skipping
 * excluded rows: best first, ties to the lower row, the same rule as topItems.
 */
function selectTop(
  k: number,
  excluded: ReadonlySet<number>,
  n: number,
  row: (j: number) => number,
  value: (j: number) => number,
): TopItems {
  const items: number[] = [];
  const scores: number[] = [];
  if (k <= 0) return { items, scores };
  for (let j = 0; j < n; j++) {
    const s = value(j);
    if (items.length === k && !(s > scores[k - 1]!)) continue;
    const i = row(j);
    if (excluded.has(i)) continue;
    let pos = items.length;
    while (pos > 0 && s > scores[pos - 1]!) pos--;
    items.splice(pos, 0, i);
    scores.splice(pos, 0, s);
    if (items.length > k) {
      items.pop();
      scores.pop();
    }
  }
  return { items, scores };
}
