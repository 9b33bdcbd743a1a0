import { erf } from "../special.js";
import type { Kernels } from "./api.js";

// Plain, obviously-correct loops (float64 accumulation): the oracle every faster backend is tested against.

export const referenceKernels: Kernels = {
  name: "reference",

  gemm(transA, transB, M, N, K, alpha, A, B, beta, C) {
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let acc = 0;
        for (let k = 0; k < K; k++) {
          const a = transA ? A[k * M + i]! : A[i * K + k]!;
          const b = transB ? B[j * K + k]! : B[k * N + j]!;
          acc += a * b;
        }
        const prev = beta === 0 ? 0 : beta * C[i * N + j]!;
        C[i * N + j] = alpha * acc + prev;
      }
    }
  },

  linearCrossEntropy({ H, W, bias, labels, N, D, V, ignoreIndex, dH, dW, dBias }) {
    let loss = 0;
    let count = 0;
    for (let n = 0; n < N; n++) if (labels[n] !== ignoreIndex) count++;
    const logits = new Float64Array(V);
    if (dH) dH.fill(0);
    for (let n = 0; n < N; n++) {
      const label = labels[n]!;
      if (label === ignoreIndex) continue;
      if (label < 0 || label >= V) throw new RangeError(`label ${label} out of range [0, ${V})`);
      let max = -Infinity;
      for (let v = 0; v < V; v++) {
        let z = bias ? bias[v]! : 0;
        for (let d = 0; d < D; d++) z += H[n * D + d]! * W[v * D + d]!;
        logits[v] = z;
        if (z > max) max = z;
      }
      let sum = 0;
      for (let v = 0; v < V; v++) sum += Math.exp(logits[v]! - max);
      const logZ = max + Math.log(sum);
      loss += logZ - logits[label]!;
      if (!dH && !dW && !dBias) continue;
      for (let v = 0; v < V; v++) {
        const g = (Math.exp(logits[v]! - logZ) - (v === label ? 1 : 0)) / count;
        if (dBias) dBias[v] = dBias[v]! + g;
        for (let d = 0; d < D; d++) {
          if (dH) dH[n * D + d] = dH[n * D + d]! + g * W[v * D + d]!;
          if (dW) dW[v * D + d] = dW[v * D + d]! + g * H[n * D + d]!;
        }
      }
    }
    return { loss, count };
  },

  layerNormForward(x, gamma, beta, rows, cols, eps, y, mean, rstd) {
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      let mu = 0;
      for (let c = 0; c < cols; c++) mu += x[o + c]!;
      mu /= cols;
      let varSum = 0;
      for (let c = 0; c < cols; c++) varSum += (x[o + c]! - mu) ** 2;
      const rs = 1 / Math.sqrt(varSum / cols + eps);
      mean[r] = mu;
      rstd[r] = rs;
      for (let c = 0; c < cols; c++) y[o + c] = (x[o + c]! - mu) * rs * gamma[c]! + beta[c]!;
    }
  },

  layerNormBackward(dy, x, gamma, mean, rstd, rows, cols, dx, dGamma, dBeta) {
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      const mu = mean[r]!;
      const rs = rstd[r]!;
      let sumG = 0;
      let sumGX = 0;
      for (let c = 0; c < cols; c++) {
        const xhat = (x[o + c]! - mu) * rs;
        const g = dy[o + c]! * gamma[c]!;
        sumG += g;
        sumGX += g * xhat;
        dGamma[c] = dGamma[c]! + dy[o + c]! * xhat;
        dBeta[c] = dBeta[c]! + dy[o + c]!;
      }
      for (let c = 0; c < cols; c++) {
        const xhat = (x[o + c]! - mu) * rs;
        const g = dy[o + c]! * gamma[c]!;
        dx[o + c] = (rs / cols) * (cols * g - sumG - xhat * sumGX);
      }
    }
  },

  geluForward(x, y) {
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      y[i] = 0.5 * v * (1 + erf(v / Math.SQRT2));
    }
  },

  geluBackward(dy, x, dx) {
    const invSqrt2Pi = 1 / Math.sqrt(2 * Math.PI);
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      const cdf = 0.5 * (1 + erf(v / Math.SQRT2));
      const pdf = invSqrt2Pi * Math.exp(-0.5 * v * v);
      dx[i] = dy[i]! * (cdf + v * pdf);
    }
  },

  embeddingGather(table, ids, dim, out) {
    for (let i = 0; i < ids.length; i++) {
      const src = ids[i]! * dim;
      out.set(table.subarray(src, src + dim), i * dim);
    }
  },

  embeddingScatterAdd(dOut, ids, dim, dTable) {
    for (let i = 0; i < ids.length; i++) {
      const dst = ids[i]! * dim;
      for (let d = 0; d < dim; d++) dTable[dst + d] = dTable[dst + d]! + dOut[i * dim + d]!;
    }
  },
};
