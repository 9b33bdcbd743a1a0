/**
 * Builds src/retrievers/catalogue-scorer-wasm.generated.ts: the WebAssembly SIMD kernel of
 * catalogue-scorer.ts, compiled from the AssemblyScript source below. Run after changing the source:
 *   npx tsx src/retrievers/catalogue-scorer-build.ts
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { compileAssemblyScript } from "../tensor/kernels/asc.js";

/**
 * Kernels of the catalogue scorer (shared memory, SIMD, atomics; rows handed out in chunks through a shared
 * counter so a helper thread can take part, src/tensor/kernels/wasm-thread.ts):
 * - scoreChunks: scores[i] = bias[i] + E[i]·x (E [n × d] f32, d a multiple of 4), four rows at a time;
 * - scoreList: the same score for listed rows, with the same arithmetic per row (bit-identical values);
 * - boundChunks: from an int8 copy of the table (Q, one scale per row) and an int16 copy of x, the upper
 *   bound of each row's score (see catalogue-scorer.ts for the error bound `A`, `eps`), and the K
 *   largest lower bounds of the rows this thread took (a min-heap per thread);
 * - collectAbove: the rows whose upper bound reaches a threshold (the shortlist).
 */
export const SCORER_SOURCE = `
@inline function finish4(a: v128): f32 {
  return (f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1)) + (f32x4.extract_lane(a, 2) + f32x4.extract_lane(a, 3));
}

function scoreRange(E: usize, bias: usize, x: usize, out: usize, start: i32, end: i32, d: i32): void {
  const rowBytes = <usize>d << 2;
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const r0 = E + <usize>i * rowBytes;
    const r1 = r0 + rowBytes;
    const r2 = r1 + rowBytes;
    const r3 = r2 + rowBytes;
    let a0 = f32x4.splat(0);
    let a1 = f32x4.splat(0);
    let a2 = f32x4.splat(0);
    let a3 = f32x4.splat(0);
    for (let k: usize = 0; k < rowBytes; k += 16) {
      const xv = v128.load(x + k);
      a0 = f32x4.add(a0, f32x4.mul(v128.load(r0 + k), xv));
      a1 = f32x4.add(a1, f32x4.mul(v128.load(r1 + k), xv));
      a2 = f32x4.add(a2, f32x4.mul(v128.load(r2 + k), xv));
      a3 = f32x4.add(a3, f32x4.mul(v128.load(r3 + k), xv));
    }
    const o = out + (<usize>i << 2);
    const b = bias + (<usize>i << 2);
    store<f32>(o, load<f32>(b) + finish4(a0));
    store<f32>(o + 4, load<f32>(b + 4) + finish4(a1));
    store<f32>(o + 8, load<f32>(b + 8) + finish4(a2));
    store<f32>(o + 12, load<f32>(b + 12) + finish4(a3));
  }
  for (; i < end; i++) {
    const r = E + <usize>i * rowBytes;
    let a = f32x4.splat(0);
    for (let k: usize = 0; k < rowBytes; k += 16) a = f32x4.add(a, f32x4.mul(v128.load(r + k), v128.load(x + k)));
    store<f32>(out + (<usize>i << 2), load<f32>(bias + (<usize>i << 2)) + finish4(a));
  }
}

export function scoreChunks(E: usize, bias: usize, x: usize, out: usize, n: i32, d: i32, chunk: i32, counter: usize): void {
  for (;;) {
    const start = atomic.add<i32>(counter, chunk);
    if (start >= n) break;
    scoreRange(E, bias, x, out, start, min(n, start + chunk), d);
  }
}

export function scoreList(E: usize, bias: usize, x: usize, rows: usize, m: i32, d: i32, out: usize): void {
  const rowBytes = <usize>d << 2;
  for (let j = 0; j < m; j++) {
    const i = load<i32>(rows + (<usize>j << 2));
    const r = E + <usize>i * rowBytes;
    let a = f32x4.splat(0);
    for (let k: usize = 0; k < rowBytes; k += 16) a = f32x4.add(a, f32x4.mul(v128.load(r + k), v128.load(x + k)));
    store<f32>(out + (<usize>j << 2), load<f32>(bias + (<usize>i << 2)) + finish4(a));
  }
}

@inline function dot8(r: usize, xq: usize, d: usize): i32 {
  let acc = i32x4.splat(0);
  for (let k: usize = 0; k < d; k += 16) {
    const q = v128.load(r + k);
    const x = xq + (k << 1);
    acc = i32x4.add(acc, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(q), v128.load(x)));
    acc = i32x4.add(acc, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(q), v128.load(x + 16)));
  }
  return (i32x4.extract_lane(acc, 0) + i32x4.extract_lane(acc, 1)) + (i32x4.extract_lane(acc, 2) + i32x4.extract_lane(acc, 3));
}

// Min-heap of f32 at h (size at h - 4), capacity K: the K largest values pushed so far. Returns the new minimum
// to beat (−∞ until full).
function heapPush(h: usize, K: i32, v: f32): f32 {
  let size = load<i32>(h - 4);
  if (size < K) {
    let i = size++;
    store<i32>(h - 4, size);
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pv = load<f32>(h + (<usize>p << 2));
      if (!(v < pv)) break;
      store<f32>(h + (<usize>i << 2), pv);
      i = p;
    }
    store<f32>(h + (<usize>i << 2), v);
    return size < K ? -Infinity : load<f32>(h);
  }
  let i = 0;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= K) break;
    let c = l;
    let cv = load<f32>(h + (<usize>l << 2));
    if (l + 1 < K) {
      const rv = load<f32>(h + (<usize>(l + 1) << 2));
      if (rv < cv) {
        c = l + 1;
        cv = rv;
      }
    }
    if (!(cv < v)) break;
    store<f32>(h + (<usize>i << 2), cv);
    i = c;
  }
  store<f32>(h + (<usize>i << 2), v);
  return load<f32>(h);
}

// Rows [1, n): the upper bound of each row's score from the int8 table, and the K largest lower bounds of
// the rows this thread took, kept in the heap at heap (its size at heap − 4, zeroed by the caller).
export function boundChunks(Q: usize, scale: usize, bias: usize, xq: usize, step: f32, A: f32, eps: f32, upper: usize, n: i32, d: i32, chunk: i32, counter: usize, heap: usize, K: i32): void {
  const rowBytes = <usize>d;
  let thr: f32 = load<i32>(heap - 4) < K ? -Infinity : load<f32>(heap);
  for (;;) {
    const start = max(1, atomic.add<i32>(counter, chunk));
    if (start >= n) break;
    const end = min(n, start + chunk);
    let i = start;
    for (; i + 2 <= end; i += 2) {
      const r0 = Q + <usize>i * rowBytes;
      const r1 = r0 + rowBytes;
      let acc0 = i32x4.splat(0);
      let acc1 = i32x4.splat(0);
      for (let k: usize = 0; k < rowBytes; k += 16) {
        const x = xq + (k << 1);
        const xl = v128.load(x);
        const xh = v128.load(x + 16);
        const q0 = v128.load(r0 + k);
        const q1 = v128.load(r1 + k);
        acc0 = i32x4.add(acc0, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(q0), xl));
        acc0 = i32x4.add(acc0, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(q0), xh));
        acc1 = i32x4.add(acc1, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(q1), xl));
        acc1 = i32x4.add(acc1, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(q1), xh));
      }
      const D0 = (i32x4.extract_lane(acc0, 0) + i32x4.extract_lane(acc0, 1)) + (i32x4.extract_lane(acc0, 2) + i32x4.extract_lane(acc0, 3));
      const D1 = (i32x4.extract_lane(acc1, 0) + i32x4.extract_lane(acc1, 1)) + (i32x4.extract_lane(acc1, 2) + i32x4.extract_lane(acc1, 3));
      const o = <usize>i << 2;
      const s0 = load<f32>(scale + o);
      const s1 = load<f32>(scale + o + 4);
      const b0 = load<f32>(bias + o);
      const b1 = load<f32>(bias + o + 4);
      const a0 = b0 + (s0 * step) * <f32>D0;
      const a1 = b1 + (s1 * step) * <f32>D1;
      const d0 = s0 * A + eps * abs<f32>(b0);
      const d1 = s1 * A + eps * abs<f32>(b1);
      store<f32>(upper + o, a0 + d0);
      store<f32>(upper + o + 4, a1 + d1);
      const lo0 = a0 - d0;
      const lo1 = a1 - d1;
      if (lo0 > thr) thr = heapPush(heap, K, lo0);
      if (lo1 > thr) thr = heapPush(heap, K, lo1);
    }
    for (; i < end; i++) {
      const o = <usize>i << 2;
      const s = load<f32>(scale + o);
      const b = load<f32>(bias + o);
      const a = b + (s * step) * <f32>dot8(Q + <usize>i * rowBytes, xq, rowBytes);
      const delta = s * A + eps * abs<f32>(b);
      const lo = a - delta;
      store<f32>(upper + o, a + delta);
      if (lo > thr) thr = heapPush(heap, K, lo);
    }
  }
}

// Rows i in [1, n) with upper[i] >= T, in increasing order, into rows; returns how many.
export function collectAbove(upper: usize, n: i32, T: f32, rows: usize): i32 {
  let m = 0;
  for (let i = 1; i < n; i++) {
    if (load<f32>(upper + (<usize>i << 2)) >= T) {
      store<i32>(rows + (<usize>m << 2), i);
      m++;
    }
  }
  return m;
}
`;

export async function compileScorerWasm(): Promise<Uint8Array> {
  return compileAssemblyScript({
    name: "score",
    source: SCORER_SOURCE,
    enable: "simd,threads",
    maximumMemoryPages: 65536,
    sharedMemory: true,
    label: "the catalogue scorer",
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const wasm = await compileScorerWasm();
  const out = join(import.meta.dirname, "catalogue-scorer-wasm.generated.ts");
  await writeFile(
    out,
    `// GENERATED by src/retrievers/catalogue-scorer-build.ts -- do not edit.\nexport const SCORER_WASM_BASE64 =\n  "${Buffer.from(wasm).toString("base64")}";\n`,
  );
  console.log(`wrote ${out} (${wasm.length} bytes of wasm)`);
}
