// Native (AVX2 + FMA) versions of the hot exports of assembly/kernels.ts. Every function takes the same
// arguments as the wasm export of the same name (addresses are byte offsets into the shared wasm memory whose
// first byte is `base`) and produces the same bits: see kernels.cc for how the arithmetic is kept identical.
#pragma once
#include <stdint.h>

namespace llamarec {

void gemm(uint8_t* base, int transA, int transB, int M, int N, int K, float alpha, uint32_t A, uint32_t B,
          float beta, uint32_t C, int i0, int i1, int j0, int j1, uint32_t work, uint32_t bias);

void gemmShared(uint8_t* base, int transA, int transB, int M, int N, int K, float alpha, uint32_t A, uint32_t B,
                float beta, uint32_t C, int splitM, int chunk, uint32_t counter, uint32_t work, uint32_t bias);

void packB(uint8_t* base, int transB, uint32_t B, int N, int K, int j0, int nc, int p0, int kc, uint32_t dst);

void linearCrossEntropy(uint8_t* base, uint32_t H, int D, int V, uint32_t bias, uint32_t rows, uint32_t labels,
                        int r0, int r1, uint32_t WpT, uint32_t Wq, float invCount, uint32_t dH, uint32_t dW,
                        uint32_t dBias, uint32_t work, int R, uint32_t stats, uint32_t counter, int partRows,
                        uint32_t dWParts, uint32_t dBiasParts);

void geluForward(uint8_t* base, uint32_t x, uint32_t y, int n, int chunk, uint32_t counter);

void geluBackward(uint8_t* base, uint32_t dy, uint32_t x, uint32_t dx, int n, int chunk, uint32_t counter);

void dropout(uint8_t* base, uint32_t src, uint32_t dst, uint32_t addend, int n, uint32_t threshold, double scale,
             int mode, uint32_t state);

void recurrenceForward(uint8_t* base, uint32_t h, uint32_t lam, uint32_t mask, uint32_t rowStart, uint32_t length,
                       uint32_t run, int numSeq, int C, int chunk, uint32_t counter);

void recurrenceBackward(uint8_t* base, uint32_t g, uint32_t lam, uint32_t mask, uint32_t rowStart,
                        uint32_t length, uint32_t run, int numSeq, int C, int chunk, uint32_t counter);

void recurrenceLambdaGrad(uint8_t* base, uint32_t g, uint32_t h, uint32_t mask, uint32_t rowStart,
                          uint32_t length, uint32_t run, int numSeq, int C, uint32_t gLam);

void adamw(uint8_t* base, uint32_t table, int count, double oneMinusBeta1, double beta2, double oneMinusBeta2,
           double eps);

void layerNormForward(uint8_t* base, uint32_t x, uint32_t gamma, uint32_t beta, int cols, float eps, uint32_t y,
                      uint32_t mean, uint32_t rstd, int rows, int chunk, uint32_t counter);

void layerNormBackward(uint8_t* base, uint32_t dy, uint32_t x, uint32_t gamma, uint32_t mean, uint32_t rstd,
                       int cols, uint32_t dx, uint32_t dGamma, uint32_t dBeta, int rows, int chunk, uint32_t counter,
                       uint32_t dGammaParts, uint32_t dBetaParts);

}  // namespace llamarec
