// Native AVX2 + FMA kernels: gemm, gemmShared, packB and linearCrossEntropy of assembly/kernels.ts, bit for bit.
// Compiled with -mavx2 -mfma -ffp-contract=off (scripts/build-native.mjs): the compiler fuses nothing; every
// fused multiply-add below is an explicit _mm256_fmadd_ps, where the wasm relaxed build has f32x4.relaxed_madd
// (which V8 lowers to vfmadd on x64 with FMA3).
//
// Why the results are the wasm kernels' bits although tiles, packing and loop order differ:
// - Every C element is an independent chain: the accumulator starts at +0 in each depth block of KC = 256 (the
//   same blocks), takes one FMA per depth index in ascending order, then (first block only) + bias, then × alpha,
//   then is combined with C as the wasm micro-kernel's modes do (0: store; 1: C + y; 2: y + beta·C). Lanes never
//   mix, so the width of a tile (16 or 24 columns = two or three 8-column panels, 4 or 6 rows) does not matter;
//   padded rows and columns are computed and discarded.
// - A float32 accumulator stored to memory and loaded back is exact, so the cross-entropy's dH product (depth V in
//   one block in the wasm kernel) is computed in depth chunks that continue each element's chain in place.
// - Where the wasm code reduces across lanes (the softmax row's max and its sums of exponentials in float32 lanes
//   over chunks of 64, then float64), the same 4-lane order is kept (128-bit accumulators).
#include "kernels.h"

#include <immintrin.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

namespace llamarec {
namespace {

constexpr int KC = 256;  // depth block: must match assembly/kernels.ts
constexpr int NC = 2048;
constexpr int MR = 6;     // GEMM register tile: 6 rows × 16 columns (12 ymm accumulators)
constexpr int MC = 120;   // rows of A packed per block (a multiple of MR; MC·KC ≤ the wasm MC·KC)
constexpr int CE_KV = 256;  // depth chunk of the cross-entropy's dH product

inline float* F(uint8_t* base, uint32_t p) { return reinterpret_cast<float*>(base + p); }
inline int imin(int a, int b) { return a < b ? a : b; }

// Runs body(start, end) on the pieces [start, start + chunk) of [0, n) taken from the shared i32 counter at
// base + counter until none are left: the wasm exports' way of letting one or two threads share a call.
template <class Body>
inline void forChunks(uint8_t* base, uint32_t counter, int n, int chunk, Body body) {
  int32_t* ctr = reinterpret_cast<int32_t*>(base + counter);
  for (;;) {
    const int start = __atomic_fetch_add(ctr, chunk, __ATOMIC_SEQ_CST);
    if (start >= n) break;
    body(start, imin(n, start + chunk));
  }
}

// ---------------------------------------------------------------- register tiles

// acc[r][p] (8 columns of panel p, row r) += Σ_k A(r, k) · B(k, p·8 + c), k ascending, one FMA per k.
// A(r, k) = a[r·ars + k·aks]; B(k, p·8 + c) = b[p·bps + k·8 + c].
template <int R, int NP>
inline __attribute__((always_inline)) void accumulate(__m256 (&acc)[R][NP], int kc, const float* a, ptrdiff_t ars,
                                                     ptrdiff_t aks, const float* b, ptrdiff_t bps) {
  // A local copy the compiler keeps in registers (it does not for the caller's array).
  __m256 c[R][NP];
#pragma GCC unroll 6
  for (int r = 0; r < R; r++)
#pragma GCC unroll 3
    for (int p = 0; p < NP; p++) c[r][p] = acc[r][p];
  for (int k = 0; k < kc; k++) {
    __m256 bv[NP];
#pragma GCC unroll 3
    for (int p = 0; p < NP; p++) bv[p] = _mm256_loadu_ps(b + p * bps);
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
      const __m256 av = _mm256_broadcast_ss(a + r * ars);
#pragma GCC unroll 3
      for (int p = 0; p < NP; p++) c[r][p] = _mm256_fmadd_ps(av, bv[p], c[r][p]);
    }
    a += aks;
    b += 8;
  }
#pragma GCC unroll 6
  for (int r = 0; r < R; r++)
#pragma GCC unroll 3
    for (int p = 0; p < NP; p++) acc[r][p] = c[r][p];
}

template <int R, int NP>
inline __attribute__((always_inline)) void zero(__m256 (&acc)[R][NP]) {
  for (int r = 0; r < R; r++)
    for (int p = 0; p < NP; p++) acc[r][p] = _mm256_setzero_ps();
}

// The wasm micro-kernel's epilogue: (+ bias row) then y = alpha·acc; mode 0: C = y; 1: C = y + C;
// 2: C = y + beta·C. Rows/cols beyond `rows`/`cols` are dropped (the scalar path of the edge tiles).
template <int R, int NP>
inline __attribute__((always_inline)) void storeTile(__m256 (&acc)[R][NP], float* c, ptrdiff_t ldc, int rows,
                                                    int cols, float alpha, float beta, int mode,
                                                    const float* bias) {
  if (bias) {
    for (int p = 0; p < NP; p++) {
      const __m256 bv = _mm256_loadu_ps(bias + 8 * p);
      for (int r = 0; r < R; r++) acc[r][p] = _mm256_add_ps(acc[r][p], bv);
    }
  }
  if (rows == R && cols == 8 * NP) {
    const __m256 va = _mm256_set1_ps(alpha);
    const __m256 vb = _mm256_set1_ps(beta);
    // alpha = 1: the product is the accumulator itself (x · 1 = x for every float the sums can produce).
    const bool one = alpha == 1.0f;
    for (int r = 0; r < R; r++) {
      for (int p = 0; p < NP; p++) {
        float* q = c + r * ldc + 8 * p;
        __m256 y = one ? acc[r][p] : _mm256_mul_ps(acc[r][p], va);
        if (mode == 1)
          y = _mm256_add_ps(y, _mm256_loadu_ps(q));
        else if (mode == 2)
          y = _mm256_add_ps(y, _mm256_mul_ps(vb, _mm256_loadu_ps(q)));
        _mm256_storeu_ps(q, y);
      }
    }
    return;
  }
  alignas(32) float t[R][8 * NP];
  for (int r = 0; r < R; r++)
    for (int p = 0; p < NP; p++) _mm256_store_ps(&t[r][8 * p], acc[r][p]);
  for (int r = 0; r < rows; r++) {
    for (int j = 0; j < cols; j++) {
      float* q = c + r * ldc + j;
      const float v = alpha * t[r][j];
      if (mode == 0)
        *q = v;
      else if (mode == 1)
        *q = *q + v;
      else
        *q = v + beta * *q;
    }
  }
}

// One tile of `rows` ≤ R rows and NP panels: acc from zero over depth kc, then the epilogue.
template <int R, int NP>
inline void tile(int kc, const float* a, ptrdiff_t ars, ptrdiff_t aks, const float* b, ptrdiff_t bps, float* c,
                 ptrdiff_t ldc, int rows, int cols, float alpha, float beta, int mode, const float* bias) {
  __m256 acc[R][NP];
  zero(acc);
  accumulate(acc, kc, a, ars, aks, b, bps);
  storeTile(acc, c, ldc, rows, cols, alpha, beta, mode, bias);
}

// Tiles with fewer rows than R read only the rows they have (A is not padded there).
template <int NP>
void tileRows(int rowsR, int kc, const float* a, ptrdiff_t ars, ptrdiff_t aks, const float* b, ptrdiff_t bps,
              float* c, ptrdiff_t ldc, int rows, int cols, float alpha, float beta, int mode, const float* bias) {
  switch (rowsR) {
    case 1: tile<1, NP>(kc, a, ars, aks, b, bps, c, ldc, rows, cols, alpha, beta, mode, bias); break;
    case 2: tile<2, NP>(kc, a, ars, aks, b, bps, c, ldc, rows, cols, alpha, beta, mode, bias); break;
    case 3: tile<3, NP>(kc, a, ars, aks, b, bps, c, ldc, rows, cols, alpha, beta, mode, bias); break;
    case 4: tile<4, NP>(kc, a, ars, aks, b, bps, c, ldc, rows, cols, alpha, beta, mode, bias); break;
    case 5: tile<5, NP>(kc, a, ars, aks, b, bps, c, ldc, rows, cols, alpha, beta, mode, bias); break;
    default: tile<6, NP>(kc, a, ars, aks, b, bps, c, ldc, rows, cols, alpha, beta, mode, bias); break;
  }
}

// ---------------------------------------------------------------- packing

// Rows [i0, i0+mc) × depth [p0, p0+kc) of op(A) (M×K) into MR-row panels: dst[(ip·kc + k)·MR + r], zero padded.
void packA(bool transA, const float* A, int M, int K, int i0, int mc, int p0, int kc, float* dst) {
  for (int ip = 0; ip < mc; ip += MR) {
    const int rows = imin(MR, mc - ip);
    float* panel = dst + ip * kc;
    if (transA) {
      // A stored K×M: the MR rows of op(A) at one depth are contiguous.
      if (rows == MR) {
        for (int k = 0; k < kc; k++) {
          memcpy(panel + k * MR, A + static_cast<ptrdiff_t>(p0 + k) * M + i0 + ip, MR * sizeof(float));
        }
      } else {
        for (int k = 0; k < kc; k++) {
          const float* src = A + static_cast<ptrdiff_t>(p0 + k) * M + i0 + ip;
          float* d = panel + k * MR;
          for (int r = 0; r < MR; r++) d[r] = r < rows ? src[r] : 0.0f;
        }
      }
    } else {
      const float* src[MR];
      for (int r = 0; r < MR; r++) src[r] = A + static_cast<ptrdiff_t>(i0 + ip + imin(r, rows - 1)) * K + p0;
      if (rows == MR) {
        for (int k = 0; k < kc; k++) {
          float* d = panel + k * MR;
          for (int r = 0; r < MR; r++) d[r] = src[r][k];
        }
      } else {
        for (int k = 0; k < kc; k++) {
          float* d = panel + k * MR;
          for (int r = 0; r < MR; r++) d[r] = r < rows ? src[r][k] : 0.0f;
        }
      }
    }
  }
}

// The wasm packB: columns [j0, j0+nc) × depth [p0, p0+kc) of op(B) (K×N) into 8-column panels
// dst[(jp·kc + k)·8 + c], zero padded.
void packBPanels(bool transB, const float* B, int N, int K, int j0, int nc, int p0, int kc, float* dst) {
  for (int jp = 0; jp < nc; jp += 8) {
    const int cols = imin(8, nc - jp);
    float* panel = dst + static_cast<ptrdiff_t>(jp) * kc;
    if (!transB) {
      for (int k = 0; k < kc; k++) {
        const float* src = B + static_cast<ptrdiff_t>(p0 + k) * N + j0 + jp;
        float* d = panel + k * 8;
        if (cols == 8) {
          _mm256_storeu_ps(d, _mm256_loadu_ps(src));
        } else {
          for (int c = 0; c < 8; c++) d[c] = c < cols ? src[c] : 0.0f;
        }
      }
    } else {
      // B stored N×K: op(B)[k, j] = B[j·K + k].
      for (int c = 0; c < 8; c++) {
        float* d = panel + c;
        if (c < cols) {
          const float* src = B + static_cast<ptrdiff_t>(j0 + jp + c) * K + p0;
          for (int k = 0; k < kc; k++) d[k * 8] = src[k];
        } else {
          for (int k = 0; k < kc; k++) d[k * 8] = 0.0f;
        }
      }
    }
  }
}

// ---------------------------------------------------------------- exp, max (the wasm expv and f32.max)

inline float fromDouble(double x) { return static_cast<float>(x); }

// Cody–Waite range reduction + Cephes polynomial, op for op the wasm expv (pmin/pmax with the wasm operand
// semantics, separate mul and add except the polynomial's five relaxed_madd).
inline __m256 expv(__m256 x) {
  // pmax(x, lo) = x < lo ? lo : x = maxps(lo, x); pmin(y, hi) = hi < y ? hi : y = minps(hi, y).
  x = _mm256_min_ps(_mm256_set1_ps(88.0f), _mm256_max_ps(_mm256_set1_ps(fromDouble(-87.33654)), x));
  const __m256 magic = _mm256_set1_ps(12583039.0f);
  const __m256 t = _mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(fromDouble(1.44269504088896341))), magic);
  const __m256 n = _mm256_sub_ps(t, magic);
  __m256 r = _mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(fromDouble(0.693359375))));
  r = _mm256_sub_ps(r, _mm256_mul_ps(n, _mm256_set1_ps(fromDouble(-2.12194440e-4))));
  const __m256 z = _mm256_mul_ps(r, r);
  __m256 p = _mm256_set1_ps(fromDouble(1.9875691500e-4));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(fromDouble(1.3981999507e-3)));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(fromDouble(8.3334519073e-3)));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(fromDouble(4.1665795894e-2)));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(fromDouble(1.6666665459e-1)));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(fromDouble(5.0000001201e-1)));
  const __m256 y = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(p, z), r), _mm256_set1_ps(1.0f));
  return _mm256_mul_ps(y, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(t), 23)));
}

inline float expScalar(float x) { return _mm256_cvtss_f32(expv(_mm256_set1_ps(x))); }

// erf(x) as the wasm erfv: an odd/even rational approximation on [-4, 4] (clamped), op for op.
inline __m256 erfv(__m256 x0) {
  const __m256 x = _mm256_min_ps(_mm256_set1_ps(4.0f), _mm256_max_ps(_mm256_set1_ps(-4.0f), x0));
  const __m256 x2 = _mm256_mul_ps(x, x);
  __m256 p = _mm256_set1_ps(fromDouble(-2.72614225801306e-10));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(fromDouble(2.77068142495902e-8)));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(fromDouble(-2.10102402082508e-6)));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(fromDouble(-5.69250639462346e-5)));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(fromDouble(-7.34990630326855e-4)));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(fromDouble(-2.95459980854025e-3)));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(fromDouble(-1.60960333262415e-2)));
  p = _mm256_mul_ps(p, x);
  __m256 q = _mm256_set1_ps(fromDouble(-1.45660718464996e-5));
  q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(fromDouble(-2.13374055278905e-4)));
  q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(fromDouble(-1.68282697438203e-3)));
  q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(fromDouble(-7.37332916720468e-3)));
  q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(fromDouble(-1.42647390514189e-2)));
  return _mm256_div_ps(p, q);
}

// Loads 8 floats, or 4 into the low half (the wasm kernels work in whole 4-lane groups).
inline __m256 load8or4(const float* p, bool four) {
  return four ? _mm256_insertf128_ps(_mm256_setzero_ps(), _mm_loadu_ps(p), 0) : _mm256_loadu_ps(p);
}
inline void store8or4(float* p, __m256 v, bool four) {
  if (four)
    _mm_storeu_ps(p, _mm256_castps256_ps128(v));
  else
    _mm256_storeu_ps(p, v);
}

// The wasm geluForwardRange / geluBackwardRange over [i0, i1) (multiples of 4).
void geluForwardRange(const float* x, float* y, int i0, int i1) {
  const __m256 half = _mm256_set1_ps(0.5f);
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 invSqrt2 = _mm256_set1_ps(fromDouble(0.7071067811865476));
  for (int i = i0; i < i1; i += 8) {
    const bool four = i + 8 > i1;
    const __m256 v = load8or4(x + i, four);
    const __m256 cdf = _mm256_mul_ps(half, _mm256_add_ps(one, erfv(_mm256_mul_ps(v, invSqrt2))));
    store8or4(y + i, _mm256_mul_ps(v, cdf), four);
  }
}

void geluBackwardRange(const float* dy, const float* x, float* dx, int i0, int i1) {
  const __m256 half = _mm256_set1_ps(0.5f);
  const __m256 mhalf = _mm256_set1_ps(-0.5f);
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 invSqrt2 = _mm256_set1_ps(fromDouble(0.7071067811865476));
  const __m256 invSqrt2Pi = _mm256_set1_ps(fromDouble(0.3989422804014327));
  for (int i = i0; i < i1; i += 8) {
    const bool four = i + 8 > i1;
    const __m256 v = load8or4(x + i, four);
    const __m256 cdf = _mm256_mul_ps(half, _mm256_add_ps(one, erfv(_mm256_mul_ps(v, invSqrt2))));
    const __m256 pdf = _mm256_mul_ps(invSqrt2Pi, expv(_mm256_mul_ps(mhalf, _mm256_mul_ps(v, v))));
    const __m256 g = _mm256_mul_ps(load8or4(dy + i, four), _mm256_add_ps(cdf, _mm256_mul_ps(v, pdf)));
    store8or4(dx + i, g, four);
  }
}

// WebAssembly f32.max: NaN if either is NaN, +0 over −0.
inline float wasmMax(float a, float b) {
  if (a != a || b != b) return a + b;
  if (a == b) return signbit(a) ? b : a;
  return a > b ? a : b;
}

// ((l0 + l1) + l2) + l3 in float32, as the wasm sumv.
inline float sum4(__m128 v) {
  alignas(16) float l[4];
  _mm_store_ps(l, v);
  return ((l[0] + l[1]) + l[2]) + l[3];
}

// The wasm softmaxRow: one row of logits into (in place) its softmax gradient; stats (max − z[label], Σ exp).
void softmaxRow(float* L, int V, int Vp, int label, float invCount, bool grads, float* dBias, double* stat) {
  const int V4 = V & ~3;
  // Running max in 4 lanes, element v in lane v mod 4 in order: pmax(vmax, x) = vmax < x ? x : vmax = maxps(x, vmax).
  __m128 vmax = _mm_set1_ps(-INFINITY);
  for (int v = 0; v < V4; v += 4) vmax = _mm_max_ps(_mm_loadu_ps(L + v), vmax);
  alignas(16) float l[4];
  _mm_store_ps(l, vmax);
  float m = wasmMax(wasmMax(l[0], l[1]), wasmMax(l[2], l[3]));
  for (int v = V4; v < V; v++) m = wasmMax(m, L[v]);
  const float zLabel = L[label];
  // exp(z − max), 8 at a time; summed in 4 float32 lanes per chunk of 64 (elements v, v+4, … in lane v mod 4,
  // in order: the low then the high half of each 8), the chunks in float64.
  const __m256 vm = _mm256_set1_ps(m);
  double total = 0;
  for (int v0 = 0; v0 < V4; v0 += 64) {
    const int vEnd = imin(V4, v0 + 64);
    __m128 acc = _mm_setzero_ps();
    int v = v0;
    for (; v + 8 <= vEnd; v += 8) {
      const __m256 e = expv(_mm256_sub_ps(_mm256_loadu_ps(L + v), vm));
      _mm256_storeu_ps(L + v, e);
      acc = _mm_add_ps(acc, _mm256_castps256_ps128(e));
      acc = _mm_add_ps(acc, _mm256_extractf128_ps(e, 1));
    }
    if (v < vEnd) {
      const __m256 x = _mm256_insertf128_ps(_mm256_setzero_ps(), _mm_loadu_ps(L + v), 0);
      const __m128 e = _mm256_castps256_ps128(expv(_mm256_sub_ps(x, vm)));
      _mm_storeu_ps(L + v, e);
      acc = _mm_add_ps(acc, e);
    }
    total += static_cast<double>(sum4(acc));
  }
  for (int v = V4; v < V; v++) {
    const float e = expScalar(L[v] - m);
    L[v] = e;
    total += static_cast<double>(e);
  }
  stat[0] = static_cast<double>(m) - static_cast<double>(zLabel);
  stat[1] = total;
  if (!grads) return;
  // g = softmax/count − onehot/count, and dBias += g in the same pass.
  const float s = static_cast<float>(static_cast<double>(invCount) / total);
  const __m256 vs = _mm256_set1_ps(s);
  int v = 0;
  for (; v + 8 <= V4; v += 8) {
    const __m256 g = _mm256_mul_ps(_mm256_loadu_ps(L + v), vs);
    _mm256_storeu_ps(L + v, g);
    if (dBias) _mm256_storeu_ps(dBias + v, _mm256_add_ps(_mm256_loadu_ps(dBias + v), g));
  }
  for (; v < V; v++) {
    const float g = L[v] * s;
    L[v] = g;
    if (dBias) dBias[v] = dBias[v] + g;
  }
  for (v = V; v < Vp; v++) L[v] = 0.0f;
  L[label] = L[label] - invCount;
  if (dBias) dBias[label] = dBias[label] - invCount;
}

}  // namespace

// ---------------------------------------------------------------- exports

// The wasm dropout: inverted dropout driven by xoshiro128** (src/tensor/rng.ts); each 32-bit draw serves elements
// 2k (low 16 bits) and 2k+1 (high 16 bits), kept when those bits are ≥ threshold; an odd last element takes the
// low half of one more draw. Products and sums in float64, rounded once (a dropped element's product is +0.0);
// mode 0: dst = v; 1: dst += v; 2: dst = f32(v) + addend. Four draws (8 elements) at a time, every element read
// before any is written (dst may be src).
void dropout(uint8_t* base, uint32_t src, uint32_t dst, uint32_t addend, int n, uint32_t threshold, double scale,
             int mode, uint32_t state) {
  const float* x = F(base, src);
  float* out = F(base, dst);
  const float* add = F(base, addend);
  uint32_t* st = reinterpret_cast<uint32_t*>(base + state);
  uint32_t s0 = st[0], s1 = st[1], s2 = st[2], s3 = st[3];
  auto next = [&]() {
    const uint32_t v = s1 * 5;
    const uint32_t r = ((v << 7) | (v >> 25)) * 9;
    const uint32_t t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = (s3 << 11) | (s3 >> 21);
    return r;
  };
  const int pairs = n >> 1;
  const __m256d vs = _mm256_set1_pd(scale);
  int k = 0;
  for (; k + 4 <= pairs; k += 4) {
    const uint32_t r0 = next();
    const uint32_t r1 = next();
    const uint32_t r2 = next();
    const uint32_t r3 = next();
    // Keep masks in element order (low half, high half of each draw), widened to float64 lanes.
    const __m128i r = _mm_set_epi32(static_cast<int>(r3), static_cast<int>(r2), static_cast<int>(r1),
                                    static_cast<int>(r0));
    const __m128i thr = _mm_set1_epi32(static_cast<int>(threshold) - 1);  // 16-bit values ≥ t ⇔ > t − 1
    const __m128i lo = _mm_cmpgt_epi32(_mm_and_si128(r, _mm_set1_epi32(0xffff)), thr);
    const __m128i hi = _mm_cmpgt_epi32(_mm_srli_epi32(r, 16), thr);
    const __m256d keep0 = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm_unpacklo_epi32(lo, hi)));
    const __m256d keep1 = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm_unpackhi_epi32(lo, hi)));
    const int i = 2 * k;
    auto half = [&](int h) {
      const __m256d mask = h == 0 ? keep0 : keep1;
      const __m256d v = _mm256_and_pd(_mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i + 4 * h)), vs), mask);
      if (mode == 0) return v;
      if (mode == 1) return _mm256_add_pd(_mm256_cvtps_pd(_mm_loadu_ps(out + i + 4 * h)), v);
      return _mm256_add_pd(_mm256_cvtps_pd(_mm256_cvtpd_ps(v)), _mm256_cvtps_pd(_mm_loadu_ps(add + i + 4 * h)));
    };
    // Both halves are read before either is written (dst may be src or the addend).
    const __m256d y0 = half(0);
    const __m256d y1 = half(1);
    _mm_storeu_ps(out + i, _mm256_cvtpd_ps(y0));
    _mm_storeu_ps(out + i + 4, _mm256_cvtpd_ps(y1));
  }
  // The last pairs and an odd last element, one element at a time (the same float64 arithmetic per lane).
  auto element = [&](int i, bool keep) {
    const double v = keep ? static_cast<double>(x[i]) * scale : 0.0;
    if (mode == 0)
      out[i] = static_cast<float>(v);
    else if (mode == 1)
      out[i] = static_cast<float>(static_cast<double>(out[i]) + v);
    else
      out[i] = static_cast<float>(static_cast<double>(static_cast<float>(v)) + static_cast<double>(add[i]));
  };
  for (; k < pairs; k++) {
    const uint32_t r = next();
    element(2 * k, (r & 0xffff) >= threshold);
    element(2 * k + 1, (r >> 16) >= threshold);
  }
  if (n & 1) {
    const uint32_t r = next();
    element(n - 1, (r & 0xffff) >= threshold);
  }
  st[0] = s0;
  st[1] = s1;
  st[2] = s2;
  st[3] = s3;
}

// ---------------------------------------------------------------- linear recurrence (the wasm kernels, f64 lanes)
// Rows packed [re(0..C) | im(0..C)]; float64 arithmetic on float32 storage in the JS order, four channels per
// f64x4 (each channel its own lane; C ≡ 2 mod 4 leaves two channels done one by one with the same operations).

namespace {

struct Seqs {
  const float* lam;
  const uint8_t* mask;
  const int32_t* rowStart;
  const int32_t* length;
  const int32_t* run;
};

inline __m256d ld4(const float* p) { return _mm256_cvtps_pd(_mm_loadu_ps(p)); }
inline void st4(float* p, __m256d v) { _mm_storeu_ps(p, _mm256_cvtpd_ps(v)); }

// acc += λ·x (Conj false: the recurrence, cur += λ·prev) or acc += conj(λ)·x (Conj true: its state gradient,
// prev += conj(λ)·cur), complex per channel, in float64 with one rounding to float32 per store, the operations in
// the order of the wasm code.
template <bool Conj>
inline void complexMulAdd(float* acc, const float* x, const float* lam, int C) {
  int c = 0;
  for (; c + 4 <= C; c += 4) {
    const __m256d lr = ld4(lam + c), li = ld4(lam + C + c);
    const __m256d xr = ld4(x + c), xi = ld4(x + C + c);
    const __m256d ar = ld4(acc + c), ai = ld4(acc + C + c);
    const __m256d rr = _mm256_mul_pd(lr, xr), ii = _mm256_mul_pd(li, xi);
    const __m256d ri = _mm256_mul_pd(lr, xi), ir = _mm256_mul_pd(li, xr);
    st4(acc + c, _mm256_add_pd(ar, Conj ? _mm256_add_pd(rr, ii) : _mm256_sub_pd(rr, ii)));
    st4(acc + C + c, _mm256_add_pd(ai, Conj ? _mm256_sub_pd(ri, ir) : _mm256_add_pd(ri, ir)));
  }
  for (; c < C; c++) {
    const double lr = lam[c], li = lam[C + c], xr = x[c], xi = x[C + c], ar = acc[c], ai = acc[C + c];
    acc[c] = static_cast<float>(ar + (Conj ? lr * xr + li * xi : lr * xr - li * xi));
    acc[C + c] = static_cast<float>(ai + (Conj ? lr * xi - li * xr : lr * xi + li * xr));
  }
}

Seqs seqs(uint8_t* base, uint32_t lam, uint32_t mask, uint32_t rowStart, uint32_t length, uint32_t run) {
  return {F(base, lam), base + mask, reinterpret_cast<const int32_t*>(base + rowStart),
          reinterpret_cast<const int32_t*>(base + length), reinterpret_cast<const int32_t*>(base + run)};
}

}  // namespace

void recurrenceForward(uint8_t* base, uint32_t h, uint32_t lam, uint32_t mask, uint32_t rowStart, uint32_t length,
                       uint32_t run, int numSeq, int C, int chunk, uint32_t counter) {
  const Seqs q = seqs(base, lam, mask, rowStart, length, run);
  float* hp = F(base, h);
  const ptrdiff_t width = 2 * static_cast<ptrdiff_t>(C);
  forChunks(base, counter, numSeq, chunk, [&](int s0, int s1) {
    for (int s = s0; s < s1; s++) {
      if (q.run[s] == 0) continue;
      const int r0 = q.rowStart[s];
      const int n = q.length[s];
      for (int r = r0 + 1; r < r0 + n; r++) {
        if (q.mask[r - 1] == 0) continue;
        complexMulAdd<false>(hp + r * width, hp + (r - 1) * width, q.lam, C);
      }
    }
  });
}

void recurrenceBackward(uint8_t* base, uint32_t g, uint32_t lam, uint32_t mask, uint32_t rowStart,
                        uint32_t length, uint32_t run, int numSeq, int C, int chunk, uint32_t counter) {
  const Seqs q = seqs(base, lam, mask, rowStart, length, run);
  float* gp = F(base, g);
  const ptrdiff_t width = 2 * static_cast<ptrdiff_t>(C);
  forChunks(base, counter, numSeq, chunk, [&](int s0, int s1) {
    for (int s = s0; s < s1; s++) {
      if (q.run[s] == 0) continue;
      const int r0 = q.rowStart[s];
      const int n = q.length[s];
      for (int r = r0 + n - 1; r > r0; r--) {
        if (q.mask[r - 1] == 0) continue;
        complexMulAdd<true>(gp + (r - 1) * width, gp + r * width, q.lam, C);
      }
    }
  });
}

void recurrenceLambdaGrad(uint8_t* base, uint32_t g, uint32_t h, uint32_t mask, uint32_t rowStart,
                          uint32_t length, uint32_t run, int numSeq, int C, uint32_t gLam) {
  const Seqs q = seqs(base, 0, mask, rowStart, length, run);
  const float* gp = F(base, g);
  const float* hp = F(base, h);
  double* gl = reinterpret_cast<double*>(base + gLam);
  const ptrdiff_t width = 2 * static_cast<ptrdiff_t>(C);
  for (int s = 0; s < numSeq; s++) {
    if (q.run[s] == 0) continue;
    const int r0 = q.rowStart[s];
    const int n = q.length[s];
    for (int r = r0 + n - 1; r > r0; r--) {
      if (q.mask[r - 1] == 0) continue;
      const float* cur = gp + r * width;
      const float* prev = hp + (r - 1) * width;
      int c = 0;
      for (; c + 4 <= C; c += 4) {
        const __m256d gr = ld4(cur + c), gi = ld4(cur + C + c);
        const __m256d xr = ld4(prev + c), xi = ld4(prev + C + c);
        _mm256_storeu_pd(gl + c, _mm256_add_pd(_mm256_loadu_pd(gl + c),
                                               _mm256_add_pd(_mm256_mul_pd(xr, gr), _mm256_mul_pd(xi, gi))));
        _mm256_storeu_pd(gl + C + c, _mm256_add_pd(_mm256_loadu_pd(gl + C + c),
                                                   _mm256_sub_pd(_mm256_mul_pd(xr, gi), _mm256_mul_pd(xi, gr))));
      }
      for (; c < C; c++) {
        const double gr = cur[c], gi = cur[C + c], xr = prev[c], xi = prev[C + c];
        gl[c] = gl[c] + (xr * gr + xi * gi);
        gl[C + c] = gl[C + c] + (xr * gi - xi * gr);
      }
    }
  }
}

// The wasm adamw: one AdamW step per table entry (8 float64: p, grad, m, v addresses, count, decay factor, step
// size, sqrt(1 − β2^t)); float64 arithmetic on float32 storage in the order of src/tensor/optim/adamw.ts, four
// elements per f64x4 (each its own lane), the rest one by one with the same operations.
void adamw(uint8_t* base, uint32_t table, int count, double oneMinusBeta1, double beta2, double oneMinusBeta2,
           double eps) {
  const double* t = reinterpret_cast<const double*>(base + table);
  const __m256d b1 = _mm256_set1_pd(oneMinusBeta1);
  const __m256d b2 = _mm256_set1_pd(beta2);
  const __m256d nb2 = _mm256_set1_pd(oneMinusBeta2);
  const __m256d ve = _mm256_set1_pd(eps);
  for (int i = 0; i < count; i++) {
    const double* e = t + 8 * static_cast<ptrdiff_t>(i);
    float* p = F(base, static_cast<uint32_t>(e[0]));
    const float* g = F(base, static_cast<uint32_t>(e[1]));
    float* m = F(base, static_cast<uint32_t>(e[2]));
    float* v = F(base, static_cast<uint32_t>(e[3]));
    const int n = static_cast<int>(e[4]);
    const double decay = e[5], stepSize = e[6], bc2 = e[7];
    const __m256d vd = _mm256_set1_pd(decay);
    const __m256d vs = _mm256_set1_pd(stepSize);
    const __m256d vc = _mm256_set1_pd(bc2);
    int j = 0;
    for (; j + 4 <= n; j += 4) {
      const __m256d gj = ld4(g + j), mj = ld4(m + j), vj = ld4(v + j), pj = ld4(p + j);
      const __m256d mi = _mm256_add_pd(mj, _mm256_mul_pd(b1, _mm256_sub_pd(gj, mj)));
      const __m256d vi = _mm256_add_pd(_mm256_mul_pd(b2, vj), _mm256_mul_pd(_mm256_mul_pd(nb2, gj), gj));
      const __m256d den = _mm256_add_pd(_mm256_div_pd(_mm256_sqrt_pd(vi), vc), ve);
      const __m256d pn = _mm256_sub_pd(_mm256_mul_pd(pj, vd), _mm256_div_pd(_mm256_mul_pd(vs, mi), den));
      st4(m + j, mi);
      st4(v + j, vi);
      st4(p + j, pn);
    }
    for (; j < n; j++) {
      const double gj = g[j], mj = m[j], vj = v[j];
      const double mi = mj + oneMinusBeta1 * (gj - mj);
      const double vi = beta2 * vj + oneMinusBeta2 * gj * gj;
      m[j] = static_cast<float>(mi);
      v[j] = static_cast<float>(vi);
      p[j] = static_cast<float>(static_cast<double>(p[j]) * decay - (stepSize * mi) / (sqrt(vi) / bc2 + eps));
    }
  }
}

// ---------------------------------------------------------------- layer norm (the wasm kernels)
// Per-row sums in four float32 lanes in the wasm order (element c in lane c mod 4; 8 loaded at a time, the low
// then the high half added), then ((l0 + l1) + l2) + l3 and the scalar tail; element-wise parts 8 wide.

namespace {

// acc (4 lanes) += row[0:c4) in the wasm order.
inline __m128 laneSum(const float* row, int c4) {
  __m128 acc = _mm_setzero_ps();
  int c = 0;
  for (; c + 8 <= c4; c += 8) {
    const __m256 v = _mm256_loadu_ps(row + c);
    acc = _mm_add_ps(acc, _mm256_castps256_ps128(v));
    acc = _mm_add_ps(acc, _mm256_extractf128_ps(v, 1));
  }
  if (c < c4) acc = _mm_add_ps(acc, _mm_loadu_ps(row + c));
  return acc;
}

void layerNormForwardRange(const float* x, const float* gamma, const float* beta, int cols, float eps, float* y,
                           float* mean, float* rstd, int r0, int r1) {
  const int c4 = cols & ~3;
  for (int r = r0; r < r1; r++) {
    const float* row = x + static_cast<ptrdiff_t>(r) * cols;
    float* out = y + static_cast<ptrdiff_t>(r) * cols;
    float s = sum4(laneSum(row, c4));
    for (int c = c4; c < cols; c++) s += row[c];
    const float mu = s / static_cast<float>(cols);
    const __m256 vmu = _mm256_set1_ps(mu);
    __m128 acc = _mm_setzero_ps();
    int c = 0;
    for (; c + 8 <= c4; c += 8) {
      const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(row + c), vmu);
      const __m256 dd = _mm256_mul_ps(d, d);
      acc = _mm_add_ps(acc, _mm256_castps256_ps128(dd));
      acc = _mm_add_ps(acc, _mm256_extractf128_ps(dd, 1));
    }
    if (c < c4) {
      const __m128 d = _mm_sub_ps(_mm_loadu_ps(row + c), _mm256_castps256_ps128(vmu));
      acc = _mm_add_ps(acc, _mm_mul_ps(d, d));
    }
    float ss = sum4(acc);
    for (c = c4; c < cols; c++) {
      const float d = row[c] - mu;
      ss += d * d;
    }
    const float rs = static_cast<float>(1.0 / sqrt(static_cast<double>(ss / static_cast<float>(cols)) +
                                                   static_cast<double>(eps)));
    mean[r] = mu;
    rstd[r] = rs;
    const __m256 vrs = _mm256_set1_ps(rs);
    for (c = 0; c + 8 <= c4; c += 8) {
      const __m256 xh = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(row + c), vmu), vrs);
      _mm256_storeu_ps(out + c, _mm256_add_ps(_mm256_mul_ps(xh, _mm256_loadu_ps(gamma + c)), _mm256_loadu_ps(beta + c)));
    }
    for (; c < cols; c++) out[c] = (row[c] - mu) * rs * gamma[c] + beta[c];
  }
}

void layerNormBackwardRange(const float* dy, const float* x, const float* gamma, const float* mean,
                            const float* rstd, int cols, float* dx, float* dGamma, float* dBeta, int r0, int r1) {
  const int c4 = cols & ~3;
  const float invCols = 1.0f / static_cast<float>(cols);
  for (int r = r0; r < r1; r++) {
    const ptrdiff_t o = static_cast<ptrdiff_t>(r) * cols;
    const float mu = mean[r];
    const float rs = rstd[r];
    const __m256 vmu = _mm256_set1_ps(mu);
    const __m256 vrs = _mm256_set1_ps(rs);
    __m128 accG = _mm_setzero_ps();
    __m128 accGX = _mm_setzero_ps();
    int c = 0;
    for (; c + 4 <= c4; c += (c + 8 <= c4 ? 8 : 4)) {
      const bool four = c + 8 > c4;
      const __m256 xh = _mm256_mul_ps(_mm256_sub_ps(load8or4(x + o + c, four), vmu), vrs);
      const __m256 d = load8or4(dy + o + c, four);
      const __m256 g = _mm256_mul_ps(d, load8or4(gamma + c, four));
      const __m256 gx = _mm256_mul_ps(g, xh);
      accG = _mm_add_ps(accG, _mm256_castps256_ps128(g));
      accGX = _mm_add_ps(accGX, _mm256_castps256_ps128(gx));
      if (!four) {
        accG = _mm_add_ps(accG, _mm256_extractf128_ps(g, 1));
        accGX = _mm_add_ps(accGX, _mm256_extractf128_ps(gx, 1));
      }
      store8or4(dGamma + c, _mm256_add_ps(load8or4(dGamma + c, four), _mm256_mul_ps(d, xh)), four);
      store8or4(dBeta + c, _mm256_add_ps(load8or4(dBeta + c, four), d), four);
    }
    float sumG = sum4(accG);
    float sumGX = sum4(accGX);
    for (c = c4; c < cols; c++) {
      const float xh = (x[o + c] - mu) * rs;
      const float d = dy[o + c];
      const float g = d * gamma[c];
      sumG += g;
      sumGX += g * xh;
      dGamma[c] = dGamma[c] + d * xh;
      dBeta[c] = dBeta[c] + d;
    }
    const float k = rs * invCols;
    const __m256 vk = _mm256_set1_ps(k);
    const __m256 vn = _mm256_set1_ps(static_cast<float>(cols));
    const __m256 vsg = _mm256_set1_ps(sumG);
    const __m256 vsgx = _mm256_set1_ps(sumGX);
    for (c = 0; c + 4 <= c4; c += 8) {
      const bool four = c + 8 > c4;
      const __m256 xh = _mm256_mul_ps(_mm256_sub_ps(load8or4(x + o + c, four), vmu), vrs);
      const __m256 g = _mm256_mul_ps(load8or4(dy + o + c, four), load8or4(gamma + c, four));
      const __m256 t = _mm256_sub_ps(_mm256_sub_ps(_mm256_mul_ps(vn, g), vsg), _mm256_mul_ps(xh, vsgx));
      store8or4(dx + o + c, _mm256_mul_ps(vk, t), four);
    }
    for (c = c4; c < cols; c++) {
      const float xh = (x[o + c] - mu) * rs;
      const float g = dy[o + c] * gamma[c];
      dx[o + c] = k * (static_cast<float>(cols) * g - sumG - xh * sumGX);
    }
  }
}

}  // namespace

void layerNormForward(uint8_t* base, uint32_t x, uint32_t gamma, uint32_t beta, int cols, float eps, uint32_t y,
                      uint32_t mean, uint32_t rstd, int rows, int chunk, uint32_t counter) {
  forChunks(base, counter, rows, chunk, [&](int start, int end) {
    layerNormForwardRange(F(base, x), F(base, gamma), F(base, beta), cols, eps, F(base, y), F(base, mean),
                          F(base, rstd), start, end);
  });
}

void layerNormBackward(uint8_t* base, uint32_t dy, uint32_t x, uint32_t gamma, uint32_t mean, uint32_t rstd,
                       int cols, uint32_t dx, uint32_t dGamma, uint32_t dBeta, int rows, int chunk, uint32_t counter,
                       uint32_t dGammaParts, uint32_t dBetaParts) {
  int32_t* ctr = reinterpret_cast<int32_t*>(base + counter);
  const ptrdiff_t stride = (cols + 3) & ~3;
  for (;;) {
    const int part = __atomic_fetch_add(ctr, 1, __ATOMIC_SEQ_CST);
    const int start = part * chunk;
    if (start >= rows) break;
    float* g = part == 0 ? F(base, dGamma) : F(base, dGammaParts) + (part - 1) * stride;
    float* b = part == 0 ? F(base, dBeta) : F(base, dBetaParts) + (part - 1) * stride;
    layerNormBackwardRange(F(base, dy), F(base, x), F(base, gamma), F(base, mean), F(base, rstd), cols, F(base, dx),
                           g, b, start, imin(rows, start + chunk));
  }
}

void geluForward(uint8_t* base, uint32_t x, uint32_t y, int n, int chunk, uint32_t counter) {
  forChunks(base, counter, n, chunk, [&](int start, int end) { geluForwardRange(F(base, x), F(base, y), start, end); });
}

void geluBackward(uint8_t* base, uint32_t dy, uint32_t x, uint32_t dx, int n, int chunk, uint32_t counter) {
  forChunks(base, counter, n, chunk,
            [&](int start, int end) { geluBackwardRange(F(base, dy), F(base, x), F(base, dx), start, end); });
}

void packB(uint8_t* base, int transB, uint32_t B, int N, int K, int j0, int nc, int p0, int kc, uint32_t dst) {
  packBPanels(transB != 0, F(base, B), N, K, j0, nc, p0, kc, F(base, dst));
}

void gemm(uint8_t* base, int transA, int transB, int M, int N, int K, float alpha, uint32_t A, uint32_t B,
          float beta, uint32_t C, int i0, int i1, int j0, int j1, uint32_t work, uint32_t bias) {
  const float* a = F(base, A);
  const float* b = F(base, B);
  float* c = F(base, C);
  const float* bs = bias ? F(base, bias) : nullptr;
  float* pa = F(base, work);
  float* pb = pa + 128 * KC;  // the wasm layout's B area: KC·(NC + 8) floats
  if (K == 0) {
    for (int i = i0; i < i1; i++) {
      for (int j = j0; j < j1; j++) {
        float* q = c + static_cast<ptrdiff_t>(i) * N + j;
        *q = beta == 0 ? 0.0f : beta * *q;
      }
    }
    return;
  }
  const int firstMode = beta == 0 ? 0 : beta == 1 ? 1 : 2;
  for (int jc = j0; jc < j1; jc += NC) {
    const int nc = imin(NC, j1 - jc);
    for (int pc = 0; pc < K; pc += KC) {
      const int kc = imin(KC, K - pc);
      packBPanels(transB != 0, b, N, K, jc, nc, pc, kc, pb);
      const int mode = pc > 0 ? 1 : firstMode;
      for (int ic = i0; ic < i1; ic += MC) {
        const int mc = imin(MC, i1 - ic);
        // A stored K×M (transA) is packed into MR-row panels (reading it in place would hit one L1 set per
        // depth step when M is a power of two); a row-major A is read in place, MR rows at a time.
        if (transA) packA(true, a, M, K, ic, mc, pc, kc, pa);
        for (int jr = 0; jr < nc; jr += 16) {
          const int cols = imin(16, nc - jr);
          const float* bp = pb + static_cast<ptrdiff_t>(jr) * kc;
          const float* rb = bs && pc == 0 ? bs + jc + jr : nullptr;
          for (int ir = 0; ir < mc; ir += MR) {
            const int rows = imin(MR, mc - ir);
            float* cp = c + static_cast<ptrdiff_t>(ic + ir) * N + jc + jr;
            if (transA) {
              // Packed A panels are zero padded to MR rows: always the full-height tile.
              const float* ap = pa + ir * kc;
              if (cols > 8)
                tile<MR, 2>(kc, ap, 1, MR, bp, 8 * kc, cp, N, rows, cols, alpha, beta, mode, rb);
              else
                tile<MR, 1>(kc, ap, 1, MR, bp, 8 * kc, cp, N, rows, cols, alpha, beta, mode, rb);
            } else {
              const float* ap = a + static_cast<ptrdiff_t>(ic + ir) * K + pc;
              if (cols > 8)
                tileRows<2>(rows, kc, ap, K, 1, bp, 8 * kc, cp, N, rows, cols, alpha, beta, mode, rb);
              else
                tileRows<1>(rows, kc, ap, K, 1, bp, 8 * kc, cp, N, rows, cols, alpha, beta, mode, rb);
            }
          }
        }
      }
    }
  }
}

void gemmShared(uint8_t* base, int transA, int transB, int M, int N, int K, float alpha, uint32_t A, uint32_t B,
                float beta, uint32_t C, int splitM, int chunk, uint32_t counter, uint32_t work, uint32_t bias) {
  forChunks(base, counter, splitM ? M : N, chunk, [&](int start, int end) {
    if (splitM)
      gemm(base, transA, transB, M, N, K, alpha, A, B, beta, C, start, end, 0, N, work, bias);
    else
      gemm(base, transA, transB, M, N, K, alpha, A, B, beta, C, 0, M, start, end, work, bias);
  });
}

// The wasm linearCrossEntropy (same arguments, parts, work size and results); see assembly/kernels.ts for the
// contract. Work layout (floats): H rows [R·D] | logits L [R·Vp] | unused [R·Vp] | Hb [R·Dp] | dH sums [R·Dp].
void linearCrossEntropy(uint8_t* base, uint32_t H, int D, int V, uint32_t bias, uint32_t rows, uint32_t labels,
                        int r0, int r1, uint32_t WpT, uint32_t Wq, float invCount, uint32_t dH, uint32_t dW,
                        uint32_t dBias, uint32_t work, int R, uint32_t stats, uint32_t counter, int partRows,
                        uint32_t dWParts, uint32_t dBiasParts) {
  const int Vp = (V + 7) & ~7;
  const int Dp = (D + 7) & ~7;
  const int V4r = (V + 3) & ~3;
  float* Hr = F(base, work);
  float* L = Hr + static_cast<ptrdiff_t>(R) * D;
  float* Hb = L + 2 * static_cast<ptrdiff_t>(R) * Vp;
  float* dHb = Hb + static_cast<ptrdiff_t>(R) * Dp;
  const float* h = F(base, H);
  const float* wpt = F(base, WpT);
  const float* wq = Wq ? F(base, Wq) : nullptr;
  const float* bs = bias ? F(base, bias) : nullptr;
  const int32_t* rowList = reinterpret_cast<const int32_t*>(base + rows);
  const int32_t* labelList = reinterpret_cast<const int32_t*>(base + labels);
  double* st = reinterpret_cast<double*>(base + stats);
  float* dh = dH ? F(base, dH) : nullptr;
  const bool grads = dH != 0 || dW != 0 || dBias != 0;
  int32_t* ctr = reinterpret_cast<int32_t*>(base + counter);
  for (;;) {
    const int part = __atomic_fetch_add(ctr, 1, __ATOMIC_SEQ_CST);
    const int p0 = r0 + part * partRows;
    if (p0 >= r1) break;
    const int p1 = imin(r1, p0 + partRows);
    float* dWp = dW == 0 ? nullptr
                 : part == 0 ? F(base, dW)
                             : F(base, dWParts) + static_cast<ptrdiff_t>(part - 1) * V * D;
    float* dBp = dBias == 0 ? nullptr
                 : part == 0 ? F(base, dBias)
                             : F(base, dBiasParts) + static_cast<ptrdiff_t>(part - 1) * V4r;
    if (part > 0 && dWp) memset(dWp, 0, static_cast<size_t>(V) * D * 4);
    if (part > 0 && dBp) memset(dBp, 0, static_cast<size_t>(V4r) * 4);
    for (int b = p0; b < p1; b += R) {
      const int nb = imin(R, p1 - b);
      const int nb4 = (nb + 3) & ~3;
      // The block's H rows (row-major, rows past nb zero), and for dW as 8-column panels of depth nb4.
      for (int r = 0; r < nb4; r++) {
        float* hr = Hr + r * D;
        if (r < nb) {
          const float* src = h + static_cast<ptrdiff_t>(rowList[b + r]) * D;
          memcpy(hr, src, static_cast<size_t>(D) * 4);
        } else {
          memset(hr, 0, static_cast<size_t>(D) * 4);
        }
        if (dWp) {
          for (int k = 0; k < Dp; k++) Hb[(k >> 3) * nb4 * 8 + r * 8 + (k & 7)] = k < D ? hr[k] : 0.0f;
        }
      }
      // Logits L[nb4 × Vp] = Hblock · Wᵀ + bias (depth D in one block, as the wasm kernel).
      for (int jr = 0; jr < Vp; jr += 24) {
        const int np = imin(3, (Vp - jr) >> 3);
        const float* bp = wpt + static_cast<ptrdiff_t>(jr) * D;
        const float* bj = bs ? bs + jr : nullptr;
        for (int ir = 0; ir < nb4; ir += 4) {
          float* cp = L + static_cast<ptrdiff_t>(ir) * Vp + jr;
          const float* ap = Hr + ir * D;
          if (np == 3)
            tile<4, 3>(D, ap, D, 1, bp, 8 * D, cp, Vp, 4, 24, 1.0f, 0.0f, 0, bj);
          else if (np == 2)
            tile<4, 2>(D, ap, D, 1, bp, 8 * D, cp, Vp, 4, 16, 1.0f, 0.0f, 0, bj);
          else
            tile<4, 1>(D, ap, D, 1, bp, 8 * D, cp, Vp, 4, 8, 1.0f, 0.0f, 0, bj);
        }
      }
      for (int r = 0; r < nb; r++) {
        softmaxRow(L + static_cast<ptrdiff_t>(r) * Vp, V, Vp, labelList[b + r], invCount, grads, dBp,
                   st + 2 * static_cast<ptrdiff_t>(b + r));
      }
      if (!grads) continue;
      for (int r = nb; r < nb4; r++) memset(L + static_cast<ptrdiff_t>(r) * Vp, 0, static_cast<size_t>(Vp) * 4);
      if (dh) {
        // dH block = G · W over depth V, in chunks of CE_KV continuing each element's sum in place (exact).
        for (int v0 = 0; v0 < V; v0 += CE_KV) {
          const int kv = imin(CE_KV, V - v0);
          for (int jr = 0; jr < Dp; jr += 24) {
            const int np = imin(3, (Dp - jr) >> 3);
            const float* bp = wq + static_cast<ptrdiff_t>(jr) * V + static_cast<ptrdiff_t>(v0) * 8;
            for (int ir = 0; ir < nb4; ir += 4) {
              const float* ap = L + static_cast<ptrdiff_t>(ir) * Vp + v0;
              float* cp = dHb + ir * Dp + jr;
              if (np == 3) {
                __m256 acc[4][3];
                if (v0 == 0) zero(acc);
                else
                  for (int r = 0; r < 4; r++)
                    for (int p = 0; p < 3; p++) acc[r][p] = _mm256_loadu_ps(cp + r * Dp + 8 * p);
                accumulate(acc, kv, ap, Vp, 1, bp, 8 * static_cast<ptrdiff_t>(V));
                for (int r = 0; r < 4; r++)
                  for (int p = 0; p < 3; p++) _mm256_storeu_ps(cp + r * Dp + 8 * p, acc[r][p]);
              } else if (np == 2) {
                __m256 acc[4][2];
                if (v0 == 0) zero(acc);
                else
                  for (int r = 0; r < 4; r++)
                    for (int p = 0; p < 2; p++) acc[r][p] = _mm256_loadu_ps(cp + r * Dp + 8 * p);
                accumulate(acc, kv, ap, Vp, 1, bp, 8 * static_cast<ptrdiff_t>(V));
                for (int r = 0; r < 4; r++)
                  for (int p = 0; p < 2; p++) _mm256_storeu_ps(cp + r * Dp + 8 * p, acc[r][p]);
              } else {
                __m256 acc[4][1];
                if (v0 == 0) zero(acc);
                else
                  for (int r = 0; r < 4; r++) acc[r][0] = _mm256_loadu_ps(cp + r * Dp);
                accumulate(acc, kv, ap, Vp, 1, bp, 8 * static_cast<ptrdiff_t>(V));
                for (int r = 0; r < 4; r++) _mm256_storeu_ps(cp + r * Dp, acc[r][0]);
              }
            }
          }
        }
        // The wasm kernel stores 1·acc: the same bits.
        for (int r = 0; r < nb; r++) {
          memcpy(dh + static_cast<ptrdiff_t>(rowList[b + r]) * D, dHb + r * Dp, static_cast<size_t>(D) * 4);
        }
      }
      if (dWp) {
        // dW += Gᵀ · Hblock: A(v, row) = L[row·Vp + v] read in place; depth nb4 (the zero rows included).
        for (int ir = 0; ir < V; ir += MR) {
          const int rowsHere = imin(MR, V - ir);
          for (int jr = 0; jr < D; jr += 16) {
            const int cols = imin(16, D - jr);
            const float* bp = Hb + static_cast<ptrdiff_t>(jr) * nb4;
            float* cp = dWp + static_cast<ptrdiff_t>(ir) * D + jr;
            if (cols > 8)
              tileRows<2>(rowsHere, nb4, L + ir, 1, Vp, bp, 8 * nb4, cp, D, rowsHere, cols, 1.0f, 0.0f, 1, nullptr);
            else
              tileRows<1>(rowsHere, nb4, L + ir, 1, Vp, bp, 8 * nb4, cp, D, rowsHere, cols, 1.0f, 0.0f, 1, nullptr);
          }
        }
      }
    }
  }
}

}  // namespace llamarec
