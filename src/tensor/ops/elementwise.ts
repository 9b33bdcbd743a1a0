import { kernels } from "../kernels/index.js";
import { allocFloat32Unset } from "../memory.js";
import { needsGrad, record } from "../tape.js";
import { type Shape, Tensor } from "../tensor.js";

/**
 * Binary ops broadcast `b` over the leading dims of `a`: b's shape must equal a trailing part of a's shape
 * (e.g. a [B, L, D] with b [D], [L, D] or [B, L, D]). That covers biases, per-channel scales and residuals.
 */
function checkSuffix(a: Shape, b: Shape, op: string): void {
  const ok = b.length <= a.length && b.every((d, i) => d === a[a.length - b.length + i]);
  if (!ok) throw new RangeError(`${op}: shape [${b}] must be a trailing part of [${a}]`);
}

export function add(a: Tensor, b: Tensor): Tensor {
  return addSigned(a, b, 1, "add");
}

export function sub(a: Tensor, b: Tensor): Tensor {
  return addSigned(a, b, -1, "sub");
}

/** a + sign·b, b broadcast over a's leading dims. */
function addSigned(a: Tensor, b: Tensor, sign: 1 | -1, op: string): Tensor {
  checkSuffix(a.shape, b.shape, op);
  const n = a.size;
  const m = b.size;
  const out = allocFloat32Unset(n);
  const x = a.data;
  const y = b.data;
  const k = kernels();
  // Same shapes (residual connections): one SIMD pass; float32 a ± b is what the JS loop rounds to.
  if (m === n && k.addScaled) k.addScaled(x, y, sign, out);
  else for (let i = 0; i < n; i += m) for (let j = 0; j < m; j++) out[i + j] = x[i + j]! + sign * y[j]!;
  const t = new Tensor(out, a.shape);
  if (needsGrad(a, b)) {
    record(t, (g) => {
      if (a.requiresGrad) {
        const ga = a.gradBuffer();
        for (let i = 0; i < n; i++) ga[i] = ga[i]! + g[i]!;
      }
      if (b.requiresGrad) {
        const gb = b.gradBuffer();
        for (let i = 0; i < n; i += m) for (let j = 0; j < m; j++) gb[j] = gb[j]! + sign * g[i + j]!;
      }
    });
  }
  return t;
}

export function mul(a: Tensor, b: Tensor): Tensor {
  checkSuffix(a.shape, b.shape, "mul");
  const n = a.size;
  const m = b.size;
  const out = allocFloat32Unset(n);
  const x = a.data;
  const y = b.data;
  for (let i = 0; i < n; i += m) for (let j = 0; j < m; j++) out[i + j] = x[i + j]! * y[j]!;
  const t = new Tensor(out, a.shape);
  if (needsGrad(a, b)) {
    record(t, (g) => {
      if (a.requiresGrad) {
        const ga = a.gradBuffer();
        for (let i = 0; i < n; i += m) for (let j = 0; j < m; j++) ga[i + j] = ga[i + j]! + g[i + j]! * y[j]!;
      }
      if (b.requiresGrad) {
        const gb = b.gradBuffer();
        for (let i = 0; i < n; i += m) for (let j = 0; j < m; j++) gb[j] = gb[j]! + g[i + j]! * x[i + j]!;
      }
    });
  }
  return t;
}

/** a · s for a constant s. */
export function scale(a: Tensor, s: number): Tensor {
  const n = a.size;
  const out = allocFloat32Unset(n);
  const x = a.data;
  for (let i = 0; i < n; i++) out[i] = x[i]! * s;
  const t = new Tensor(out, a.shape);
  if (needsGrad(a)) {
    record(t, (g) => {
      const ga = a.gradBuffer();
      for (let i = 0; i < n; i++) ga[i] = ga[i]! + g[i]! * s;
    });
  }
  return t;
}

/** a + s for a constant s. */
export function addScalar(a: Tensor, s: number): Tensor {
  const n = a.size;
  const out = allocFloat32Unset(n);
  const x = a.data;
  for (let i = 0; i < n; i++) out[i] = x[i]! + s;
  const t = new Tensor(out, a.shape);
  if (needsGrad(a)) {
    record(t, (g) => {
      const ga = a.gradBuffer();
      for (let i = 0; i < n; i++) ga[i] = ga[i]! + g[i]!;
    });
  }
  return t;
}

/**
 * A unary op from its value f(x) and derivative f'(x, f(x)). The loops are specialised per op by V8 since
 * each op passes its own small functions; used only for cheap, rarely-hot ops.
 */
function unary(a: Tensor, f: (x: number) => number, df: (x: number, y: number) => number): Tensor {
  const n = a.size;
  const out = allocFloat32Unset(n);
  const x = a.data;
  for (let i = 0; i < n; i++) out[i] = f(x[i]!);
  const t = new Tensor(out, a.shape);
  if (needsGrad(a)) {
    record(t, (g) => {
      const ga = a.gradBuffer();
      for (let i = 0; i < n; i++) ga[i] = ga[i]! + g[i]! * df(x[i]!, out[i]!);
    });
  }
  return t;
}

export function exp(a: Tensor): Tensor {
  return unary(a, Math.exp, (_x, y) => y);
}

export function log(a: Tensor): Tensor {
  return unary(a, Math.log, (x) => 1 / x);
}

export function sin(a: Tensor): Tensor {
  return unary(a, Math.sin, Math.cos);
}

export function cos(a: Tensor): Tensor {
  return unary(a, Math.cos, (x) => -Math.sin(x));
}

export function sqrt(a: Tensor): Tensor {
  return unary(a, Math.sqrt, (_x, y) => 0.5 / y);
}

export function neg(a: Tensor): Tensor {
  return scale(a, -1);
}

/** SiLU (swish): x·σ(x), as torch.nn.SiLU. */
export function silu(a: Tensor): Tensor {
  return unary(
    a,
    (x) => x / (1 + Math.exp(-x)),
    (x) => {
      const s = 1 / (1 + Math.exp(-x));
      return s * (1 + x * (1 - s));
    },
  );
}

export function sigmoid(a: Tensor): Tensor {
  return unary(
    a,
    (x) => 1 / (1 + Math.exp(-x)),
    (_x, y) => y * (1 - y),
  );
}

export function tanh(a: Tensor): Tensor {
  return unary(a, Math.tanh, (_x, y) => 1 - y * y);
}

/** torch's hard sigmoid as NARM's code writes it: clamp(x/6 + 1/2, 0, 1) (gradient 1/6 inside, 0 outside). */
export function hardSigmoid(a: Tensor): Tensor {
  return unary(
    a,
    (x) => Math.min(1, Math.max(0, x / 6 + 0.5)),
    (x) => (x > -3 && x < 3 ? 1 / 6 : 0),
  );
}

export function relu(a: Tensor): Tensor {
  return unary(
    a,
    (x) => (x > 0 ? x : 0),
    (x) => (x > 0 ? 1 : 0),
  );
}
