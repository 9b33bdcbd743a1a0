// @ts-nocheck -- AssemblyScript source (v128, usize, load<T>): compiled by asc via src/tensor/kernels/wasm-build.ts,
// never by tsc. Keep it free of decorators so that tsc can still parse it.
//
// Every kernel works on raw byte addresses inside the shared linear memory; the JS side (wasm.ts) owns the
// layout. There is no runtime allocation here, no static data and no mutable globals, so the same module can be
// instantiated on several threads over one shared memory.
//
// GEMM follows the GotoBLAS scheme: op(B) is packed into kc×8 column panels, op(A) into kc×4 row panels, and a
// 4×8 register-tile micro-kernel (8 v128 accumulators) runs over the packed panels.

const KC: i32 = 256;
const MC: i32 = 128;
const NC: i32 = 2048;

// Bytes of per-thread work space gemm() needs.
export function gemmWorkBytes(): i32 {
  return (MC * KC + KC * (NC + 8) + 64) * 4;
}

// a·b + c. The relaxed-SIMD build (ASC_FEATURE_RELAXED_SIMD) emits one fused multiply-add (vfmadd on x64) instead
// of the baseline build's mul + add; the other branch is compiled out.
function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

// ---------------------------------------------------------------- packing

// Stores the 4×4 transpose of rows (a, b, c, d) as four vectors at dst, dst+step, dst+2·step, dst+3·step.
function storeTransposed(a: v128, b: v128, c: v128, d: v128, dst: usize, step: usize): void {
  const t0 = f32x4.shuffle(a, b, 0, 4, 1, 5);
  const t1 = f32x4.shuffle(a, b, 2, 6, 3, 7);
  const t2 = f32x4.shuffle(c, d, 0, 4, 1, 5);
  const t3 = f32x4.shuffle(c, d, 2, 6, 3, 7);
  v128.store(dst, f32x4.shuffle(t0, t2, 0, 1, 4, 5));
  v128.store(dst + step, f32x4.shuffle(t0, t2, 2, 3, 6, 7));
  v128.store(dst + 2 * step, f32x4.shuffle(t1, t3, 0, 1, 4, 5));
  v128.store(dst + 3 * step, f32x4.shuffle(t1, t3, 2, 3, 6, 7));
}

// Rows [i0, i0+mc) × depth [p0, p0+kc) of op(A) (M×K) into 4-row panels: dst[(ip*kc + k)*4 + r], zero padded.
function packA(transA: bool, A: usize, M: i32, K: i32, i0: i32, mc: i32, p0: i32, kc: i32, dst: usize): void {
  if (transA && (mc & 3) == 0) {
    // A is stored K×M: rows of A are read contiguously, 8 at a time, and each panel receives 8 consecutive
    // k (128 contiguous bytes). Storing one k at a time instead would hit addresses kc·16 bytes apart, which
    // all fall into the same L1 cache set.
    const k8 = kc & ~7;
    for (let kb = 0; kb < k8; kb += 8) {
      const src = A + (<usize>((p0 + kb) * M + i0) << 2);
      const ld = <usize>M << 2;
      for (let ip = 0; ip < mc; ip += 4) {
        const s0 = src + (<usize>ip << 2);
        const d = dst + (<usize>(ip * kc + kb * 4) << 2);
        v128.store(d, v128.load(s0));
        v128.store(d, v128.load(s0 + ld), 16);
        v128.store(d, v128.load(s0 + 2 * ld), 32);
        v128.store(d, v128.load(s0 + 3 * ld), 48);
        v128.store(d, v128.load(s0 + 4 * ld), 64);
        v128.store(d, v128.load(s0 + 5 * ld), 80);
        v128.store(d, v128.load(s0 + 6 * ld), 96);
        v128.store(d, v128.load(s0 + 7 * ld), 112);
      }
    }
    for (let k = k8; k < kc; k++) {
      const src = A + (<usize>((p0 + k) * M + i0) << 2);
      for (let ip = 0; ip < mc; ip += 4) {
        v128.store(dst + (<usize>(ip * kc + k * 4) << 2), v128.load(src + (<usize>ip << 2)));
      }
    }
    return;
  }
  for (let ip = 0; ip < mc; ip += 4) {
    const rows = min(4, mc - ip);
    const panel = dst + (<usize>(ip * kc) << 2);
    if (transA) {
      // A is stored K×M: four consecutive rows of op(A) are contiguous.
      for (let k = 0; k < kc; k++) {
        const src = A + (<usize>((p0 + k) * M + i0 + ip) << 2);
        const d = panel + (<usize>k << 4);
        if (rows == 4) {
          v128.store(d, v128.load(src));
        } else {
          for (let r = 0; r < 4; r++) store<f32>(d + (<usize>r << 2), r < rows ? load<f32>(src + (<usize>r << 2)) : 0);
        }
      }
    } else if (rows == 4) {
      // Four row-major rows → k-major panel, 4×4 blocks at a time.
      const s0 = A + (<usize>((i0 + ip) * K + p0) << 2);
      const ld = <usize>K << 2;
      const k4 = kc & ~3;
      for (let k = 0; k < k4; k += 4) {
        const o = <usize>k << 2;
        storeTransposed(
          v128.load(s0 + o),
          v128.load(s0 + ld + o),
          v128.load(s0 + 2 * ld + o),
          v128.load(s0 + 3 * ld + o),
          panel + (o << 2),
          16,
        );
      }
      for (let k = k4; k < kc; k++) {
        for (let r = 0; r < 4; r++) {
          store<f32>(panel + (<usize>(k * 4 + r) << 2), load<f32>(s0 + <usize>r * ld + (<usize>k << 2)));
        }
      }
    } else {
      for (let r = 0; r < 4; r++) {
        const d0 = panel + (<usize>r << 2);
        if (r < rows) {
          const src = A + (<usize>((i0 + ip + r) * K + p0) << 2);
          for (let k = 0; k < kc; k++) store<f32>(d0 + (<usize>k << 4), load<f32>(src + (<usize>k << 2)));
        } else {
          for (let k = 0; k < kc; k++) store<f32>(d0 + (<usize>k << 4), 0);
        }
      }
    }
  }
}

// Columns [j0, j0+nc) × depth [p0, p0+kc) of op(B) (K×N) into 8-column panels: dst[(jp*kc + k)*8 + c], zero padded.
export function packB(transB: bool, B: usize, N: i32, K: i32, j0: i32, nc: i32, p0: i32, kc: i32, dst: usize): void {
  for (let jp = 0; jp < nc; jp += 8) {
    const cols = min(8, nc - jp);
    const panel = dst + (<usize>(jp * kc) << 2);
    if (!transB) {
      for (let k = 0; k < kc; k++) {
        const src = B + (<usize>((p0 + k) * N + j0 + jp) << 2);
        const d = panel + (<usize>k << 5);
        if (cols == 8) {
          v128.store(d, v128.load(src));
          v128.store(d, v128.load(src, 16), 16);
        } else {
          for (let c = 0; c < 8; c++) store<f32>(d + (<usize>c << 2), c < cols ? load<f32>(src + (<usize>c << 2)) : 0);
        }
      }
    } else if (cols == 8) {
      // B is stored N×K: eight rows of B → k-major panel, as two 4×4 transposes per 4 k.
      const s0 = B + (<usize>((j0 + jp) * K + p0) << 2);
      const ld = <usize>K << 2;
      const k4 = kc & ~3;
      for (let k = 0; k < k4; k += 4) {
        const o = <usize>k << 2;
        const d = panel + (o << 3);
        storeTransposed(v128.load(s0 + o), v128.load(s0 + ld + o), v128.load(s0 + 2 * ld + o), v128.load(s0 + 3 * ld + o), d, 32);
        const s4 = s0 + 4 * ld;
        storeTransposed(v128.load(s4 + o), v128.load(s4 + ld + o), v128.load(s4 + 2 * ld + o), v128.load(s4 + 3 * ld + o), d + 16, 32);
      }
      for (let k = k4; k < kc; k++) {
        for (let c = 0; c < 8; c++) {
          store<f32>(panel + (<usize>(k * 8 + c) << 2), load<f32>(s0 + <usize>c * ld + (<usize>k << 2)));
        }
      }
    } else {
      // B is stored N×K: op(B)[k, j] = B[j*K + k].
      for (let c = 0; c < 8; c++) {
        const d0 = panel + (<usize>c << 2);
        if (c < cols) {
          const src = B + (<usize>((j0 + jp + c) * K + p0) << 2);
          for (let k = 0; k < kc; k++) store<f32>(d0 + (<usize>k << 5), load<f32>(src + (<usize>k << 2)));
        } else {
          for (let k = 0; k < kc; k++) store<f32>(d0 + (<usize>k << 5), 0);
        }
      }
    }
  }
}

// ---------------------------------------------------------------- micro-kernel

// Writes one 8-wide row of a tile. mode 0: C = alpha·acc; 1: C += alpha·acc; 2: C = alpha·acc + beta·C.
function writeRow(p: usize, x0: v128, x1: v128, va: v128, vb: v128, mode: i32): void {
  let y0 = f32x4.mul(x0, va);
  let y1 = f32x4.mul(x1, va);
  if (mode == 1) {
    y0 = f32x4.add(y0, v128.load(p));
    y1 = f32x4.add(y1, v128.load(p, 16));
  } else if (mode == 2) {
    y0 = f32x4.add(y0, f32x4.mul(vb, v128.load(p)));
    y1 = f32x4.add(y1, f32x4.mul(vb, v128.load(p, 16)));
  }
  v128.store(p, y0);
  v128.store(p, y1, 16);
}

// C[rows×cols] (row stride ldc floats) ⊕= alpha · Apanel(kc×4)ᵀ · Bpanel(kc×8) (+ rowBias[0:8] on every row when
// rowBias != 0). The A panel holds 4 contiguous floats per k, `aStep` bytes apart (16 when packed; the fused CE
// passes a row stride to read Gᵀ straight out of the logits block). `tile` is 128 bytes of edge-tile scratch.
function micro(
  kc: i32,
  a: usize,
  aStep: usize,
  b: usize,
  c: usize,
  ldc: i32,
  rows: i32,
  cols: i32,
  alpha: f32,
  beta: f32,
  mode: i32,
  tile: usize,
  rowBias: usize,
): void {
  let c00 = f32x4.splat(0);
  let c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0);
  let c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0);
  let c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0);
  let c31 = f32x4.splat(0);
  for (let k = 0; k < kc; k++) {
    const b0 = v128.load(b);
    const b1 = v128.load(b, 16);
    let av = v128.load32_splat(a);
    c00 = madd(av, b0, c00);
    c01 = madd(av, b1, c01);
    av = v128.load32_splat(a, 4);
    c10 = madd(av, b0, c10);
    c11 = madd(av, b1, c11);
    av = v128.load32_splat(a, 8);
    c20 = madd(av, b0, c20);
    c21 = madd(av, b1, c21);
    av = v128.load32_splat(a, 12);
    c30 = madd(av, b0, c30);
    c31 = madd(av, b1, c31);
    a += aStep;
    b += 32;
  }
  if (rowBias != 0) {
    const r0 = v128.load(rowBias);
    const r1 = v128.load(rowBias, 16);
    c00 = f32x4.add(c00, r0);
    c01 = f32x4.add(c01, r1);
    c10 = f32x4.add(c10, r0);
    c11 = f32x4.add(c11, r1);
    c20 = f32x4.add(c20, r0);
    c21 = f32x4.add(c21, r1);
    c30 = f32x4.add(c30, r0);
    c31 = f32x4.add(c31, r1);
  }
  const va = f32x4.splat(alpha);
  const vb = f32x4.splat(beta);
  if (rows == 4 && cols == 8) {
    const ld = <usize>ldc << 2;
    writeRow(c, c00, c01, va, vb, mode);
    writeRow(c + ld, c10, c11, va, vb, mode);
    writeRow(c + 2 * ld, c20, c21, va, vb, mode);
    writeRow(c + 3 * ld, c30, c31, va, vb, mode);
    return;
  }
  v128.store(tile, c00);
  v128.store(tile, c01, 16);
  v128.store(tile, c10, 32);
  v128.store(tile, c11, 48);
  v128.store(tile, c20, 64);
  v128.store(tile, c21, 80);
  v128.store(tile, c30, 96);
  v128.store(tile, c31, 112);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < cols; j++) {
      const p = c + (<usize>(r * ldc + j) << 2);
      const v = alpha * load<f32>(tile + (<usize>(r * 8 + j) << 2));
      if (mode == 0) store<f32>(p, v);
      else if (mode == 1) store<f32>(p, load<f32>(p) + v);
      else store<f32>(p, v + beta * load<f32>(p));
    }
  }
}

// ---------------------------------------------------------------- GEMM

// C[i0:i1, j0:j1] of C = alpha·op(A)·op(B) + beta·C (row-major, C is M×N). `work` holds gemmWorkBytes().
// bias != 0 (with beta 0 and alpha 1; zero-padded to a multiple of 8 columns): C = op(A)·op(B) + bias on every
// row, the bias added to the first depth block's sums in the micro-kernel — the bits of filling C with the bias
// rows and running beta 1, without that pass over C.
export function gemm(
  transA: bool,
  transB: bool,
  M: i32,
  N: i32,
  K: i32,
  alpha: f32,
  A: usize,
  B: usize,
  beta: f32,
  C: usize,
  i0: i32,
  i1: i32,
  j0: i32,
  j1: i32,
  work: usize,
  bias: usize,
): void {
  const pa = work;
  const pb = pa + (<usize>(MC * KC) << 2);
  const tile = pb + (<usize>(KC * (NC + 8)) << 2);
  if (K == 0) {
    for (let i = i0; i < i1; i++) {
      for (let j = j0; j < j1; j++) {
        const p = C + (<usize>(i * N + j) << 2);
        store<f32>(p, beta == 0 ? 0 : beta * load<f32>(p));
      }
    }
    return;
  }
  const firstMode = beta == 0 ? 0 : beta == 1 ? 1 : 2;
  for (let jc = j0; jc < j1; jc += NC) {
    const nc = min(NC, j1 - jc);
    for (let pc = 0; pc < K; pc += KC) {
      const kc = min(KC, K - pc);
      packB(transB, B, N, K, jc, nc, pc, kc, pb);
      const mode = pc > 0 ? 1 : firstMode;
      for (let ic = i0; ic < i1; ic += MC) {
        const mc = min(MC, i1 - ic);
        packA(transA, A, M, K, ic, mc, pc, kc, pa);
        for (let jr = 0; jr < nc; jr += 8) {
          const bp = pb + (<usize>(jr * kc) << 2);
          const cols = min(8, nc - jr);
          for (let ir = 0; ir < mc; ir += 4) {
            const cp = C + (<usize>((ic + ir) * N + jc + jr) << 2);
            const rb = bias != 0 && pc == 0 ? bias + (<usize>(jc + jr) << 2) : 0;
            micro(kc, pa + (<usize>(ir * kc) << 2), 16, bp, cp, N, min(4, mc - ir), cols, alpha, beta, mode, tile, rb);
          }
        }
      }
    }
  }
}

// Two-thread GEMM with dynamic scheduling: each thread takes `chunk` rows (splitM) or columns of C from the
// shared i32 counter until none are left, so a thread descheduled on a busy machine does not hold the other up.
export function gemmShared(
  transA: bool,
  transB: bool,
  M: i32,
  N: i32,
  K: i32,
  alpha: f32,
  A: usize,
  B: usize,
  beta: f32,
  C: usize,
  splitM: bool,
  chunk: i32,
  counter: usize,
  work: usize,
  bias: usize,
): void {
  const total = splitM ? M : N;
  for (;;) {
    const start = atomic.add<i32>(counter, chunk);
    if (start >= total) break;
    const end = min(total, start + chunk);
    if (splitM) gemm(transA, transB, M, N, K, alpha, A, B, beta, C, start, end, 0, N, work, bias);
    else gemm(transA, transB, M, N, K, alpha, A, B, beta, C, 0, M, start, end, work, bias);
  }
}

// ---------------------------------------------------------------- math

// exp(x) for x in roughly [-87, 88]: Cody–Waite range reduction + Cephes expf polynomial (~1 ulp).
// n = round(x·log2 e) comes from the float "magic number" trick: adding 1.5·2²³ (+127, the exponent bias) leaves
// n + 127 in the low mantissa bits, so 2ⁿ is those bits shifted into the exponent field. This avoids
// nearest/trunc_sat, and pmin/pmax (plain minps/maxps) avoid the NaN fix-ups of f32x4.min/max.
function expv(x: v128): v128 {
  x = f32x4.pmin(f32x4.pmax(x, f32x4.splat(-87.33654)), f32x4.splat(88.0));
  const magic = f32x4.splat(12583039.0); // 1.5·2²³ + 127
  const t = f32x4.add(f32x4.mul(x, f32x4.splat(1.44269504088896341)), magic);
  const n = f32x4.sub(t, magic);
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  const z = f32x4.mul(r, r);
  let p = f32x4.splat(1.9875691500e-4);
  p = madd(p, r, f32x4.splat(1.3981999507e-3));
  p = madd(p, r, f32x4.splat(8.3334519073e-3));
  p = madd(p, r, f32x4.splat(4.1665795894e-2));
  p = madd(p, r, f32x4.splat(1.6666665459e-1));
  p = madd(p, r, f32x4.splat(5.0000001201e-1));
  const y = f32x4.add(f32x4.add(f32x4.mul(p, z), r), f32x4.splat(1.0));
  return f32x4.mul(y, i32x4.shl(t, 23));
}

function expScalar(x: f32): f32 {
  return f32x4.extract_lane(expv(f32x4.splat(x)), 0);
}

// erf(x) as an odd/even rational approximation on [-4, 4] (erf is ±1 in float32 beyond); |error| < 4e-7.
function erfv(x0: v128): v128 {
  const x = f32x4.pmin(f32x4.pmax(x0, f32x4.splat(-4.0)), f32x4.splat(4.0));
  const x2 = f32x4.mul(x, x);
  let p = f32x4.splat(-2.72614225801306e-10);
  p = madd(p, x2, f32x4.splat(2.77068142495902e-8));
  p = madd(p, x2, f32x4.splat(-2.10102402082508e-6));
  p = madd(p, x2, f32x4.splat(-5.69250639462346e-5));
  p = madd(p, x2, f32x4.splat(-7.34990630326855e-4));
  p = madd(p, x2, f32x4.splat(-2.95459980854025e-3));
  p = madd(p, x2, f32x4.splat(-1.60960333262415e-2));
  p = f32x4.mul(p, x);
  let q = f32x4.splat(-1.45660718464996e-5);
  q = madd(q, x2, f32x4.splat(-2.13374055278905e-4));
  q = madd(q, x2, f32x4.splat(-1.68282697438203e-3));
  q = madd(q, x2, f32x4.splat(-7.37332916720468e-3));
  q = madd(q, x2, f32x4.splat(-1.42647390514189e-2));
  return f32x4.div(p, q);
}

// ---------------------------------------------------------------- GELU
// Exported kernels take their work from a shared i32 counter in `chunk`-sized pieces (a multiple of 4; JS rounds
// n up to whole v128 lanes), so one or two threads can run the same call.

function geluForwardRange(x: usize, y: usize, i0: i32, i1: i32): void {
  const half = f32x4.splat(0.5);
  const one = f32x4.splat(1.0);
  const invSqrt2 = f32x4.splat(0.7071067811865476);
  for (let i = i0; i < i1; i += 4) {
    const o = <usize>i << 2;
    const v = v128.load(x + o);
    const cdf = f32x4.mul(half, f32x4.add(one, erfv(f32x4.mul(v, invSqrt2))));
    v128.store(y + o, f32x4.mul(v, cdf));
  }
}

function geluBackwardRange(dy: usize, x: usize, dx: usize, i0: i32, i1: i32): void {
  const half = f32x4.splat(0.5);
  const mhalf = f32x4.splat(-0.5);
  const one = f32x4.splat(1.0);
  const invSqrt2 = f32x4.splat(0.7071067811865476);
  const invSqrt2Pi = f32x4.splat(0.3989422804014327);
  for (let i = i0; i < i1; i += 4) {
    const o = <usize>i << 2;
    const v = v128.load(x + o);
    const cdf = f32x4.mul(half, f32x4.add(one, erfv(f32x4.mul(v, invSqrt2))));
    const pdf = f32x4.mul(invSqrt2Pi, expv(f32x4.mul(mhalf, f32x4.mul(v, v))));
    v128.store(dx + o, f32x4.mul(v128.load(dy + o), f32x4.add(cdf, f32x4.mul(v, pdf))));
  }
}

export function geluForward(x: usize, y: usize, n: i32, chunk: i32, counter: usize): void {
  for (;;) {
    const start = atomic.add<i32>(counter, chunk);
    if (start >= n) break;
    geluForwardRange(x, y, start, min(n, start + chunk));
  }
}

export function geluBackward(dy: usize, x: usize, dx: usize, n: i32, chunk: i32, counter: usize): void {
  for (;;) {
    const start = atomic.add<i32>(counter, chunk);
    if (start >= n) break;
    geluBackwardRange(dy, x, dx, start, min(n, start + chunk));
  }
}

// ---------------------------------------------------------------- LayerNorm (rows in chunks from a shared counter)

function sumv(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

function layerNormForwardRange(
  x: usize,
  gamma: usize,
  beta: usize,
  cols: i32,
  eps: f32,
  y: usize,
  mean: usize,
  rstd: usize,
  r0: i32,
  r1: i32,
): void {
  const c4 = cols & ~3;
  for (let r = r0; r < r1; r++) {
    const row = x + (<usize>(r * cols) << 2);
    const out = y + (<usize>(r * cols) << 2);
    let acc = f32x4.splat(0);
    for (let c = 0; c < c4; c += 4) acc = f32x4.add(acc, v128.load(row + (<usize>c << 2)));
    let s = sumv(acc);
    for (let c = c4; c < cols; c++) s += load<f32>(row + (<usize>c << 2));
    const mu = s / <f32>cols;
    const vmu = f32x4.splat(mu);
    acc = f32x4.splat(0);
    for (let c = 0; c < c4; c += 4) {
      const d = f32x4.sub(v128.load(row + (<usize>c << 2)), vmu);
      acc = f32x4.add(acc, f32x4.mul(d, d));
    }
    let ss = sumv(acc);
    for (let c = c4; c < cols; c++) {
      const d = load<f32>(row + (<usize>c << 2)) - mu;
      ss += d * d;
    }
    const rs = <f32>(1.0 / Math.sqrt(<f64>(ss / <f32>cols) + <f64>eps));
    store<f32>(mean + (<usize>r << 2), mu);
    store<f32>(rstd + (<usize>r << 2), rs);
    const vrs = f32x4.splat(rs);
    for (let c = 0; c < c4; c += 4) {
      const o = <usize>c << 2;
      const xh = f32x4.mul(f32x4.sub(v128.load(row + o), vmu), vrs);
      v128.store(out + o, f32x4.add(f32x4.mul(xh, v128.load(gamma + o)), v128.load(beta + o)));
    }
    for (let c = c4; c < cols; c++) {
      const o = <usize>c << 2;
      store<f32>(out + o, (load<f32>(row + o) - mu) * rs * load<f32>(gamma + o) + load<f32>(beta + o));
    }
  }
}

function layerNormBackwardRange(
  dy: usize,
  x: usize,
  gamma: usize,
  mean: usize,
  rstd: usize,
  cols: i32,
  dx: usize,
  dGamma: usize,
  dBeta: usize,
  r0: i32,
  r1: i32,
): void {
  const c4 = cols & ~3;
  const invCols = <f32>1.0 / <f32>cols;
  for (let r = r0; r < r1; r++) {
    const base = <usize>(r * cols) << 2;
    const mu = load<f32>(mean + (<usize>r << 2));
    const rs = load<f32>(rstd + (<usize>r << 2));
    const vmu = f32x4.splat(mu);
    const vrs = f32x4.splat(rs);
    let accG = f32x4.splat(0);
    let accGX = f32x4.splat(0);
    for (let c = 0; c < c4; c += 4) {
      const o = <usize>c << 2;
      const xh = f32x4.mul(f32x4.sub(v128.load(x + base + o), vmu), vrs);
      const d = v128.load(dy + base + o);
      const g = f32x4.mul(d, v128.load(gamma + o));
      accG = f32x4.add(accG, g);
      accGX = f32x4.add(accGX, f32x4.mul(g, xh));
      v128.store(dGamma + o, f32x4.add(v128.load(dGamma + o), f32x4.mul(d, xh)));
      v128.store(dBeta + o, f32x4.add(v128.load(dBeta + o), d));
    }
    let sumG = sumv(accG);
    let sumGX = sumv(accGX);
    for (let c = c4; c < cols; c++) {
      const o = <usize>c << 2;
      const xh = (load<f32>(x + base + o) - mu) * rs;
      const d = load<f32>(dy + base + o);
      const g = d * load<f32>(gamma + o);
      sumG += g;
      sumGX += g * xh;
      store<f32>(dGamma + o, load<f32>(dGamma + o) + d * xh);
      store<f32>(dBeta + o, load<f32>(dBeta + o) + d);
    }
    const k = rs * invCols;
    const vk = f32x4.splat(k);
    const vn = f32x4.splat(<f32>cols);
    const vsg = f32x4.splat(sumG);
    const vsgx = f32x4.splat(sumGX);
    for (let c = 0; c < c4; c += 4) {
      const o = <usize>c << 2;
      const xh = f32x4.mul(f32x4.sub(v128.load(x + base + o), vmu), vrs);
      const g = f32x4.mul(v128.load(dy + base + o), v128.load(gamma + o));
      const t = f32x4.sub(f32x4.sub(f32x4.mul(vn, g), vsg), f32x4.mul(xh, vsgx));
      v128.store(dx + base + o, f32x4.mul(vk, t));
    }
    for (let c = c4; c < cols; c++) {
      const o = <usize>c << 2;
      const xh = (load<f32>(x + base + o) - mu) * rs;
      const g = load<f32>(dy + base + o) * load<f32>(gamma + o);
      store<f32>(dx + base + o, k * (<f32>cols * g - sumG - xh * sumGX));
    }
  }
}

export function layerNormForward(
  x: usize,
  gamma: usize,
  beta: usize,
  cols: i32,
  eps: f32,
  y: usize,
  mean: usize,
  rstd: usize,
  rows: i32,
  chunk: i32,
  counter: usize,
): void {
  for (;;) {
    const start = atomic.add<i32>(counter, chunk);
    if (start >= rows) break;
    layerNormForwardRange(x, gamma, beta, cols, eps, y, mean, rstd, start, min(rows, start + chunk));
  }
}

// Rows in parts of `chunk` taken from the shared counter. dGamma/dBeta accumulate: part 0 into dGamma/dBeta,
// part p > 0 into its own zeroed partial at dGammaParts/dBetaParts + (p−1)·round4(cols) floats, which JS adds in
// part order (a result independent of thread scheduling).
export function layerNormBackward(
  dy: usize,
  x: usize,
  gamma: usize,
  mean: usize,
  rstd: usize,
  cols: i32,
  dx: usize,
  dGamma: usize,
  dBeta: usize,
  rows: i32,
  chunk: i32,
  counter: usize,
  dGammaParts: usize,
  dBetaParts: usize,
): void {
  const stride = <usize>((cols + 3) & ~3) << 2;
  for (;;) {
    const part = atomic.add<i32>(counter, 1);
    const start = part * chunk;
    if (start >= rows) break;
    const g = part == 0 ? dGamma : dGammaParts + <usize>(part - 1) * stride;
    const b = part == 0 ? dBeta : dBetaParts + <usize>(part - 1) * stride;
    layerNormBackwardRange(dy, x, gamma, mean, rstd, cols, dx, g, b, start, min(rows, start + chunk));
  }
}

// ---------------------------------------------------------------- fused linear + softmax cross-entropy

// Work bytes one thread needs for blocks of R rows (R multiple of 4).
export function ceWorkBytes(R: i32, D: i32, V: i32): i32 {
  const Vp = (V + 7) & ~7;
  const Dp = (D + 7) & ~7;
  // Hp, L, GpA, Hb, dHb, tile
  return (R * D + 2 * R * Vp + R * Dp + R * Dp + 64) * 4;
}

// Turns one row of logits into (in place) its softmax gradient. Stores (max − z[label], Σ exp(z − max)) as two
// f64 at `stat`; JS adds the log so that this module needs no libm tables (no data segments in shared memory).
// Columns [V, Vp) get zero.
function softmaxRow(
  L: usize,
  V: i32,
  Vp: i32,
  label: i32,
  invCount: f32,
  grads: bool,
  dBias: usize,
  stat: usize,
): void {
  const V4 = V & ~3;
  // The running max (the bias is already in: the logits GEMM adds it).
  let vmax = f32x4.splat(-Infinity);
  for (let v = 0; v < V4; v += 4) vmax = f32x4.pmax(vmax, v128.load(L + (<usize>v << 2)));
  let m = max(max(f32x4.extract_lane(vmax, 0), f32x4.extract_lane(vmax, 1)), max(f32x4.extract_lane(vmax, 2), f32x4.extract_lane(vmax, 3)));
  for (let v = V4; v < V; v++) m = max(m, load<f32>(L + (<usize>v << 2)));
  const zLabel = load<f32>(L + (<usize>label << 2));
  // exp(z − max), summed in float32 lanes over chunks of 64 and in float64 across chunks.
  const vm = f32x4.splat(m);
  let total: f64 = 0;
  for (let v0 = 0; v0 < V4; v0 += 64) {
    const vEnd = min(V4, v0 + 64);
    let acc = f32x4.splat(0);
    for (let v = v0; v < vEnd; v += 4) {
      const o = <usize>v << 2;
      const e = expv(f32x4.sub(v128.load(L + o), vm));
      v128.store(L + o, e);
      acc = f32x4.add(acc, e);
    }
    total += <f64>sumv(acc);
  }
  for (let v = V4; v < V; v++) {
    const o = <usize>v << 2;
    const e = expScalar(load<f32>(L + o) - m);
    store<f32>(L + o, e);
    total += <f64>e;
  }
  store<f64>(stat, <f64>m - <f64>zLabel);
  store<f64>(stat, total, 8);
  if (!grads) return;
  // g = softmax/count − onehot/count, and dBias += g in the same pass.
  const s = <f32>(<f64>invCount / total);
  const vs = f32x4.splat(s);
  for (let v = 0; v < V4; v += 4) {
    const o = <usize>v << 2;
    const g = f32x4.mul(v128.load(L + o), vs);
    v128.store(L + o, g);
    if (dBias != 0) v128.store(dBias + o, f32x4.add(v128.load(dBias + o), g));
  }
  for (let v = V4; v < V; v++) {
    const o = <usize>v << 2;
    const g = load<f32>(L + o) * s;
    store<f32>(L + o, g);
    if (dBias != 0) store<f32>(dBias + o, load<f32>(dBias + o) + g);
  }
  for (let v = V; v < Vp; v++) store<f32>(L + (<usize>v << 2), 0);
  const lo = <usize>label << 2;
  store<f32>(L + lo, load<f32>(L + lo) - invCount);
  if (dBias != 0) store<f32>(dBias + lo, load<f32>(dBias + lo) - invCount);
}

// Labelled rows list[r0:r1) (row indices `rows`, labels `labels`), in parts of `partRows` rows (a multiple of R)
// taken from the shared i32 `counter` (start 0), so two threads calling this share the parts dynamically. Part 0
// accumulates into dW/dBias, part p > 0 into its own zeroed partials at dWParts + (p−1)·V·D and dBiasParts +
// (p−1)·round4(V) floats;
// JS adds the partials in part order, so the result does not depend on which thread ran which part.
// WpT: Wᵀ packed as 8-column panels of depth D (packB(true, W, V, D, ...)); Wq: W packed as 8-column panels of
// depth V (packB(false, W, D, V, ...)), only needed for dH. dH (N×D, pre-zeroed), dW (V×D) and dBias (V) are
// optional (0); dW and dBias accumulate. bias (optional, 0 = none) must be zero-padded to a multiple of 8.
// Per-row loss parts go to stats[2·i], stats[2·i+1] (f64, list index i).
export function linearCrossEntropy(
  H: usize,
  D: i32,
  V: i32,
  bias: usize,
  rows: usize,
  labels: usize,
  r0: i32,
  r1: i32,
  WpT: usize,
  Wq: usize,
  invCount: f32,
  dH: usize,
  dW: usize,
  dBias: usize,
  work: usize,
  R: i32,
  stats: usize,
  counter: usize,
  partRows: i32,
  dWParts: usize,
  dBiasParts: usize,
): void {
  const Vp = (V + 7) & ~7;
  const Dp = (D + 7) & ~7;
  const Hp = work;
  const L = Hp + (<usize>(R * D) << 2);
  const GpA = L + (<usize>(R * Vp) << 2);
  const Hb = GpA + (<usize>(R * Vp) << 2);
  const dHb = Hb + (<usize>(R * Dp) << 2);
  const tile = dHb + (<usize>(R * Dp) << 2);
  const grads = dH != 0 || dW != 0 || dBias != 0;
  for (;;) {
    const part = atomic.add<i32>(counter, 1);
    const p0 = r0 + part * partRows;
    if (p0 >= r1) break;
    const p1 = min(r1, p0 + partRows);
    const dWp = dW == 0 || part == 0 ? dW : dWParts + (<usize>((part - 1) * V * D) << 2);
    const dBp = dBias == 0 || part == 0 ? dBias : dBiasParts + (<usize>((part - 1) * ((V + 3) & ~3)) << 2);
    // A part's partials are zeroed by the thread that runs it (in parallel, and only for parts that exist).
    if (part > 0 && dWp != 0) memory.fill(dWp, 0, <usize>(V * D) << 2);
    if (part > 0 && dBp != 0) memory.fill(dBp, 0, <usize>((V + 3) & ~3) << 2);
    for (let b = p0; b < p1; b += R) {
      const nb = min(R, p1 - b);
      const nb4 = (nb + 3) & ~3;
      // Pack the block's H rows as A panels (and as B panels for dW); rows past nb are zero.
      for (let r = 0; r < nb4; r++) {
        const d0 = Hp + (<usize>(((r >> 2) * D) << 2) << 2) + (<usize>(r & 3) << 2);
        if (r < nb) {
          const src = H + (<usize>(load<i32>(rows + (<usize>(b + r) << 2)) * D) << 2);
          for (let k = 0; k < D; k++) store<f32>(d0 + (<usize>k << 4), load<f32>(src + (<usize>k << 2)));
          if (dWp != 0) {
            for (let k = 0; k < Dp; k++) {
              const dst = Hb + (<usize>((k >> 3) * nb4 * 8 + r * 8 + (k & 7)) << 2);
              store<f32>(dst, k < D ? load<f32>(src + (<usize>k << 2)) : 0);
            }
          }
        } else {
          for (let k = 0; k < D; k++) store<f32>(d0 + (<usize>k << 4), 0);
          if (dWp != 0) {
            for (let k = 0; k < Dp; k++) store<f32>(Hb + (<usize>((k >> 3) * nb4 * 8 + r * 8 + (k & 7)) << 2), 0);
          }
        }
      }
      // Logits block L[nb4 × Vp] = Hblock · Wᵀ.
      for (let jr = 0; jr < Vp; jr += 8) {
        const bp = WpT + (<usize>(jr * D) << 2);
        for (let ir = 0; ir < nb4; ir += 4) {
          const bj = bias == 0 ? 0 : bias + (<usize>jr << 2);
          micro(D, Hp + (<usize>(ir * D) << 2), 16, bp, L + (<usize>(ir * Vp + jr) << 2), Vp, 4, 8, 1, 0, 0, tile, bj);
        }
      }
      for (let r = 0; r < nb; r++) {
        const label = load<i32>(labels + (<usize>(b + r) << 2));
        const stat = stats + (<usize>(b + r) << 4);
        softmaxRow(L + (<usize>(r * Vp) << 2), V, Vp, label, invCount, grads, dBp, stat);
      }
      if (!grads) continue;
      for (let r = nb; r < nb4; r++) memory.fill(L + (<usize>(r * Vp) << 2), 0, <usize>Vp << 2);
      if (dH != 0) {
        // G as A panels (4 rows interleaved) via 4×4 transposes.
        for (let ip = 0; ip < nb4; ip += 4) {
          const s0 = L + (<usize>(ip * Vp) << 2);
          const ld = <usize>Vp << 2;
          const dst = GpA + (<usize>(ip * Vp) << 2);
          for (let v = 0; v < Vp; v += 4) {
            const o = <usize>v << 2;
            storeTransposed(
              v128.load(s0 + o),
              v128.load(s0 + ld + o),
              v128.load(s0 + 2 * ld + o),
              v128.load(s0 + 3 * ld + o),
              dst + (o << 2),
              16,
            );
          }
        }
        // dH block = G · W.
        for (let jr = 0; jr < Dp; jr += 8) {
          const bp = Wq + (<usize>(jr * V) << 2);
          for (let ir = 0; ir < nb4; ir += 4) {
            const ap = GpA + (<usize>(ir * Vp) << 2);
            micro(V, ap, 16, bp, dHb + (<usize>(ir * Dp + jr) << 2), Dp, 4, 8, 1, 0, 0, tile, 0);
          }
        }
        for (let r = 0; r < nb; r++) {
          const row = load<i32>(rows + (<usize>(b + r) << 2));
          memory.copy(dH + (<usize>(row * D) << 2), dHb + (<usize>(r * Dp) << 2), <usize>D << 2);
        }
      }
      if (dWp != 0) {
        // dW += Gᵀ · Hblock. Gᵀ needs no packing: for a fixed row of G, four consecutive vocabulary entries are
        // contiguous, so the A "panel" is the logits block read with a row stride.
        // Vocabulary rows outer, hidden columns inner: the block's G columns (nb4 × 16 bytes) and the 4 rows of dW
        // stay in L1 for all D/8 tiles, so G and dW are each streamed once per block (the other order streamed
        // them D/8 times from L3: neither fits in L2). Every tile's sum is unchanged.
        const ldL = <usize>Vp << 2;
        for (let ir = 0; ir < V; ir += 4) {
          const rowsHere = min(4, V - ir);
          for (let jr = 0; jr < D; jr += 8) {
            const bp = Hb + (<usize>(jr * nb4) << 2);
            const cp = dWp + (<usize>(ir * D + jr) << 2);
            micro(nb4, L + (<usize>ir << 2), ldL, bp, cp, D, rowsHere, min(8, D - jr), 1, 0, 1, tile, 0);
          }
        }
      }
    }
  }
}

// dst[i] += parts[p·stride + i] for p = 0, 1, …, count−1 in that order, for i in [0, n) (exactly n: no lane past
// it is written), in chunks of `chunk` elements (a multiple of 4) from the shared counter: the partial sums of a
// split kernel reduced on both threads, each element summed in part order whatever the split.
export function addParts(dst: usize, parts: usize, n: i32, count: i32, stride: i32, chunk: i32, counter: usize): void {
  for (;;) {
    const start = atomic.add<i32>(counter, chunk);
    if (start >= n) break;
    const end = min(n, start + chunk);
    const end4 = start + ((end - start) & ~3);
    for (let p = 0; p < count; p++) {
      const src = parts + (<usize>(p * stride) << 2);
      for (let i = start; i < end4; i += 4) {
        const o = <usize>i << 2;
        v128.store(dst + o, f32x4.add(v128.load(dst + o), v128.load(src + o)));
      }
      for (let i = end4; i < end; i++) {
        const o = <usize>i << 2;
        store<f32>(dst + o, load<f32>(dst + o) + load<f32>(src + o));
      }
    }
  }
}

// dst[0:n) += src[0:n)  (n a multiple of 4: JS rounds buffers up).
export function addInto(dst: usize, src: usize, n: i32): void {
  for (let i = 0; i < n; i += 4) {
    const o = <usize>i << 2;
    v128.store(dst + o, f32x4.add(v128.load(dst + o), v128.load(src + o)));
  }
}

// out[0:n) = a ± b (sign > 0: +), n a multiple of 4 (JS passes the rounded-up length when the lanes past n are
// its own scratch). Chunks of `chunk` from the shared counter.
export function addScaled(a: usize, b: usize, sign: i32, out: usize, n: i32, chunk: i32, counter: usize): void {
  for (;;) {
    const start = atomic.add<i32>(counter, chunk);
    if (start >= n) break;
    const end = min(n, start + chunk);
    for (let i = start; i < end; i += 4) {
      const o = <usize>i << 2;
      const x = v128.load(a + o);
      const y = v128.load(b + o);
      v128.store(out + o, sign > 0 ? f32x4.add(x, y) : f32x4.sub(x, y));
    }
  }
}

// ---------------------------------------------------------------- column sums (bias gradients)

// gb[0:cols) += Σ_r g[r, 0:cols) for a row-major g [rows × cols], one row after the other: every column is summed
// in row order with float32 rounding after each add, exactly a plain JS loop over rows.
export function addColumnSums(g: usize, rows: i32, cols: i32, gb: usize): void {
  const c4 = cols & ~3;
  for (let r = 0; r < rows; r++) {
    const row = g + (<usize>(r * cols) << 2);
    for (let c = 0; c < c4; c += 4) {
      const o = <usize>c << 2;
      v128.store(gb + o, f32x4.add(v128.load(gb + o), v128.load(row + o)));
    }
    for (let c = c4; c < cols; c++) {
      const o = <usize>c << 2;
      store<f32>(gb + o, load<f32>(gb + o) + load<f32>(row + o));
    }
  }
}

// ---------------------------------------------------------------- linear recurrence (LRU), sequential form

// Complex values packed per row as [re(0..C) | im(0..C)] (2C floats); λ packed the same way. Sequence s owns rows
// [rowStart[s], rowStart[s] + length[s]); only sequences with run[s] != 0 are processed here. Sequences are taken
// from the shared i32 counter in parts of `chunk`, so two threads can share them (each sequence is independent).
// All arithmetic is float64 on float32 inputs, rounded to float32 on store, in the order of the JS code
// (src/tensor/ops/linear_recurrence.ts), so results are bit for bit the same.

// h_t += λ·h_{t−1} where mask[t−1] != 0, for t after the first row of each sequence (in place on h).
export function recurrenceForward(
  h: usize,
  lam: usize,
  mask: usize,
  rowStart: usize,
  length: usize,
  run: usize,
  numSeq: i32,
  C: i32,
  chunk: i32,
  counter: usize,
): void {
  const width = <usize>(2 * C) << 2;
  const imOff = <usize>C << 2;
  for (;;) {
    const s0 = atomic.add<i32>(counter, chunk);
    if (s0 >= numSeq) break;
    const s1 = min(numSeq, s0 + chunk);
    for (let s = s0; s < s1; s++) {
      if (load<i32>(run + (<usize>s << 2)) == 0) continue;
      const r0 = load<i32>(rowStart + (<usize>s << 2));
      const n = load<i32>(length + (<usize>s << 2));
      for (let r = r0 + 1; r < r0 + n; r++) {
        if (load<u8>(mask + <usize>(r - 1)) == 0) continue;
        const prev = h + <usize>(r - 1) * width;
        const cur = prev + width;
        for (let c = 0; c < C; c += 2) {
          const o = <usize>c << 2;
          const lr = f64x2.promote_low_f32x4(v128.load64_zero(lam + o));
          const li = f64x2.promote_low_f32x4(v128.load64_zero(lam + imOff + o));
          const xr = f64x2.promote_low_f32x4(v128.load64_zero(prev + o));
          const xi = f64x2.promote_low_f32x4(v128.load64_zero(prev + imOff + o));
          const hr = f64x2.promote_low_f32x4(v128.load64_zero(cur + o));
          const hi = f64x2.promote_low_f32x4(v128.load64_zero(cur + imOff + o));
          const nr = f64x2.add(hr, f64x2.sub(f64x2.mul(lr, xr), f64x2.mul(li, xi)));
          const ni = f64x2.add(hi, f64x2.add(f64x2.mul(lr, xi), f64x2.mul(li, xr)));
          v128.store64_lane(cur + o, f32x4.demote_f64x2_zero(nr), 0);
          v128.store64_lane(cur + imOff + o, f32x4.demote_f64x2_zero(ni), 0);
        }
      }
    }
  }
}

// Backward of recurrenceForward for the state gradient, in place on g (rows last to first within a sequence):
// g_{t−1} += conj(λ)·g_t where mask[t−1] != 0.
export function recurrenceBackward(
  g: usize,
  lam: usize,
  mask: usize,
  rowStart: usize,
  length: usize,
  run: usize,
  numSeq: i32,
  C: i32,
  chunk: i32,
  counter: usize,
): void {
  const width = <usize>(2 * C) << 2;
  const imOff = <usize>C << 2;
  for (;;) {
    const s0 = atomic.add<i32>(counter, chunk);
    if (s0 >= numSeq) break;
    const s1 = min(numSeq, s0 + chunk);
    for (let s = s0; s < s1; s++) {
      if (load<i32>(run + (<usize>s << 2)) == 0) continue;
      const r0 = load<i32>(rowStart + (<usize>s << 2));
      const n = load<i32>(length + (<usize>s << 2));
      for (let r = r0 + n - 1; r > r0; r--) {
        if (load<u8>(mask + <usize>(r - 1)) == 0) continue;
        const cur = g + <usize>r * width;
        const prev = cur - width;
        for (let c = 0; c < C; c += 2) {
          const o = <usize>c << 2;
          const lr = f64x2.promote_low_f32x4(v128.load64_zero(lam + o));
          const li = f64x2.promote_low_f32x4(v128.load64_zero(lam + imOff + o));
          const gr = f64x2.promote_low_f32x4(v128.load64_zero(cur + o));
          const gi = f64x2.promote_low_f32x4(v128.load64_zero(cur + imOff + o));
          const pr = f64x2.promote_low_f32x4(v128.load64_zero(prev + o));
          const pi = f64x2.promote_low_f32x4(v128.load64_zero(prev + imOff + o));
          const nr = f64x2.add(pr, f64x2.add(f64x2.mul(lr, gr), f64x2.mul(li, gi)));
          const ni = f64x2.add(pi, f64x2.sub(f64x2.mul(lr, gi), f64x2.mul(li, gr)));
          v128.store64_lane(prev + o, f32x4.demote_f64x2_zero(nr), 0);
          v128.store64_lane(prev + imOff + o, f32x4.demote_f64x2_zero(ni), 0);
        }
      }
    }
  }
}

// gLam (float64 [2C], accumulated) += Σ conj(h_{t−1})·g_t over the processed sequences in order, rows last to
// first: the order in which the JS backward summed them (g is final by then). One thread.
export function recurrenceLambdaGrad(
  g: usize,
  h: usize,
  mask: usize,
  rowStart: usize,
  length: usize,
  run: usize,
  numSeq: i32,
  C: i32,
  gLam: usize,
): void {
  const width = <usize>(2 * C) << 2;
  const imOff = <usize>C << 2;
  const imOff64 = <usize>C << 3;
  for (let s = 0; s < numSeq; s++) {
    if (load<i32>(run + (<usize>s << 2)) == 0) continue;
    const r0 = load<i32>(rowStart + (<usize>s << 2));
    const n = load<i32>(length + (<usize>s << 2));
    for (let r = r0 + n - 1; r > r0; r--) {
      if (load<u8>(mask + <usize>(r - 1)) == 0) continue;
      const cur = g + <usize>r * width;
      const prev = h + <usize>(r - 1) * width;
      for (let c = 0; c < C; c += 2) {
        const o = <usize>c << 2;
        const o64 = <usize>c << 3;
        const gr = f64x2.promote_low_f32x4(v128.load64_zero(cur + o));
        const gi = f64x2.promote_low_f32x4(v128.load64_zero(cur + imOff + o));
        const xr = f64x2.promote_low_f32x4(v128.load64_zero(prev + o));
        const xi = f64x2.promote_low_f32x4(v128.load64_zero(prev + imOff + o));
        const ar = gLam + o64;
        const ai = gLam + imOff64 + o64;
        v128.store(ar, f64x2.add(v128.load(ar), f64x2.add(f64x2.mul(xr, gr), f64x2.mul(xi, gi))));
        v128.store(ai, f64x2.add(v128.load(ai), f64x2.sub(f64x2.mul(xr, gi), f64x2.mul(xi, gr))));
      }
    }
  }
}

// ---------------------------------------------------------------- AdamW

// One AdamW step for every parameter in one call (torch.optim.AdamW, as src/tensor/optim/adamw.ts computes it:
// float64 arithmetic on float32 storage, the moments' unrounded new values feeding the update). `table` holds per
// parameter 8 float64: p, grad, m, v addresses, element count, decay factor, step size, sqrt(1 − β2^t).
export function adamw(table: usize, count: i32, oneMinusBeta1: f64, beta2: f64, oneMinusBeta2: f64, eps: f64): void {
  const b1 = f64x2.splat(oneMinusBeta1);
  const b2 = f64x2.splat(beta2);
  const nb2 = f64x2.splat(oneMinusBeta2);
  const ve = f64x2.splat(eps);
  for (let i = 0; i < count; i++) {
    const e = table + (<usize>i << 6);
    const p = <usize>load<f64>(e);
    const g = <usize>load<f64>(e, 8);
    const m = <usize>load<f64>(e, 16);
    const v = <usize>load<f64>(e, 24);
    const n = <i32>load<f64>(e, 32);
    const decay = load<f64>(e, 40);
    const stepSize = load<f64>(e, 48);
    const bc2 = load<f64>(e, 56);
    const vd = f64x2.splat(decay);
    const vs = f64x2.splat(stepSize);
    const vc = f64x2.splat(bc2);
    const n2 = n & ~1;
    for (let j = 0; j < n2; j += 2) {
      const o = <usize>j << 2;
      const gj = f64x2.promote_low_f32x4(v128.load64_zero(g + o));
      const mj = f64x2.promote_low_f32x4(v128.load64_zero(m + o));
      const vj = f64x2.promote_low_f32x4(v128.load64_zero(v + o));
      const pj = f64x2.promote_low_f32x4(v128.load64_zero(p + o));
      const mi = f64x2.add(mj, f64x2.mul(b1, f64x2.sub(gj, mj)));
      const vi = f64x2.add(f64x2.mul(b2, vj), f64x2.mul(f64x2.mul(nb2, gj), gj));
      const den = f64x2.add(f64x2.div(f64x2.sqrt(vi), vc), ve);
      const pn = f64x2.sub(f64x2.mul(pj, vd), f64x2.div(f64x2.mul(vs, mi), den));
      v128.store64_lane(m + o, f32x4.demote_f64x2_zero(mi), 0);
      v128.store64_lane(v + o, f32x4.demote_f64x2_zero(vi), 0);
      v128.store64_lane(p + o, f32x4.demote_f64x2_zero(pn), 0);
    }
    for (let j = n2; j < n; j++) {
      const o = <usize>j << 2;
      const gj = <f64>load<f32>(g + o);
      const mj = <f64>load<f32>(m + o);
      const vj = <f64>load<f32>(v + o);
      const mi = mj + oneMinusBeta1 * (gj - mj);
      const vi = beta2 * vj + oneMinusBeta2 * gj * gj;
      store<f32>(m + o, <f32>mi);
      store<f32>(v + o, <f32>vi);
      store<f32>(p + o, <f32>(<f64>load<f32>(p + o) * decay - (stepSize * mi) / (Math.sqrt(vi) / bc2 + eps)));
    }
  }
}

// ---------------------------------------------------------------- dropout

// Inverted dropout driven by xoshiro128** (the stream of src/tensor/rng.ts): each 32-bit draw serves elements 2k
// (low 16 bits) and 2k+1 (high 16 bits), an element survives when its 16 bits are ≥ threshold; an odd last
// element takes the low half of one more draw. The 4 state words at `state` are read and written back.
// mode 0: dst = survive ? src·scale : 0;  1: dst += that;  2: dst = f32(src·scale or 0) + addend.
// The product is formed in float64 and rounded once, as the JS code does, so results are bit for bit those of
// Rng.applyDropout / Rng.applyDropoutAdd. dst may be src.
export function dropout(src: usize, dst: usize, addend: usize, n: i32, threshold: u32, scale: f64, mode: i32, state: usize): void {
  let s0 = load<u32>(state);
  let s1 = load<u32>(state, 4);
  let s2 = load<u32>(state, 8);
  let s3 = load<u32>(state, 12);
  const pairs = n >> 1;
  const draws = pairs + (n & 1);
  const vs = f64x2.splat(scale);
  for (let k = 0; k < draws; k++) {
    const r = rotl<u32>(s1 * 5, 7) * 9;
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl<u32>(s3, 11);
    const o = <usize>k << 3;
    if (k < pairs) {
      // Both elements of the draw as one f64x2: the same float64 products and sums, rounded once, as the scalar
      // path; a dropped element's product is masked to +0.0 (the scalar path's 0).
      const keep = i64x2.replace_lane(
        i64x2.splat(-(<i64>((r & 0xffff) >= threshold))),
        1,
        -(<i64>(r >>> 16 >= threshold)),
      );
      const x = f64x2.promote_low_f32x4(v128.load64_zero(src + o));
      const v = v128.and(f64x2.mul(x, vs), keep);
      let y: v128;
      if (mode == 0) y = v;
      else if (mode == 1) y = f64x2.add(f64x2.promote_low_f32x4(v128.load64_zero(dst + o)), v);
      else {
        const vr = f64x2.promote_low_f32x4(f32x4.demote_f64x2_zero(v));
        y = f64x2.add(vr, f64x2.promote_low_f32x4(v128.load64_zero(addend + o)));
      }
      v128.store64_lane(dst + o, f32x4.demote_f64x2_zero(y), 0);
    } else {
      dropoutElement(src + o, dst + o, addend + o, (r & 0xffff) >= threshold, scale, mode);
    }
  }
  store<u32>(state, s0);
  store<u32>(state, s1, 4);
  store<u32>(state, s2, 8);
  store<u32>(state, s3, 12);
}

function dropoutElement(src: usize, dst: usize, addend: usize, keep: bool, scale: f64, mode: i32): void {
  const v: f64 = keep ? <f64>load<f32>(src) * scale : 0;
  if (mode == 0) store<f32>(dst, <f32>v);
  else if (mode == 1) store<f32>(dst, <f32>(<f64>load<f32>(dst) + v));
  else store<f32>(dst, <f32>(<f64>(<f32>v) + <f64>load<f32>(addend)));
}
