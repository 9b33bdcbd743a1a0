import { allocFloat32Unset } from "../memory.js";
import { needsGrad, record } from "../tape.js";
import { type Shape, sizeOf, Tensor } from "../tensor.js";

/** Same data in a new shape (one dim may be −1). The data buffer is shared; gradients are not. */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const known = shape.filter((d) => d !== -1).reduce((p, d) => p * d, 1);
  const free = shape.filter((d) => d === -1).length;
  if (free > 1) throw new RangeError(`reshape: at most one −1 in [${shape}]`);
  const resolved = shape.map((d) => (d === -1 ? x.size / known : d));
  if (sizeOf(resolved) !== x.size || !resolved.every(Number.isInteger)) {
    throw new RangeError(`reshape: cannot view [${x.shape}] as [${shape}]`);
  }
  const t = new Tensor(x.data, resolved);
  if (needsGrad(x)) {
    record(t, (g) => {
      const gx = x.gradBuffer();
      for (let i = 0; i < gx.length; i++) gx[i] = gx[i]! + g[i]!;
    });
  }
  return t;
}

/** Swaps the last two dims (a copy). */
export function transpose(x: Tensor): Tensor {
  if (x.rank < 2) throw new RangeError(`transpose needs rank ≥ 2, got [${x.shape}]`);
  const R = x.dim(-2);
  const C = x.dim(-1);
  const batch = x.size / (R * C);
  const out = allocFloat32Unset(x.size);
  const d = x.data;
  for (let b = 0; b < batch; b++) {
    const o = b * R * C;
    for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) out[o + c * R + r] = d[o + r * C + c]!;
  }
  const t = new Tensor(out, [...x.shape.slice(0, -2), C, R]);
  if (needsGrad(x)) {
    record(t, (g) => {
      const gx = x.gradBuffer();
      for (let b = 0; b < batch; b++) {
        const o = b * R * C;
        for (let r = 0; r < R; r++)
          for (let c = 0; c < C; c++) gx[o + r * C + c] = gx[o + r * C + c]! + g[o + c * R + r]!;
      }
    });
  }
  return t;
}

function blocks(shape: Shape, axis: number): { a: number; outer: number; inner: number } {
  const a = axis < 0 ? shape.length + axis : axis;
  if (a < 0 || a >= shape.length) throw new RangeError(`axis ${axis} out of range for shape [${shape}]`);
  return { a, outer: sizeOf(shape.slice(0, a)), inner: sizeOf(shape.slice(a + 1)) };
}

/** x[..., start:end, ...] along `axis` (a copy). */
export function slice(x: Tensor, axis: number, start: number, end: number): Tensor {
  const { a, outer, inner } = blocks(x.shape, axis);
  const n = x.shape[a]!;
  if (!(0 <= start && start <= end && end <= n))
    throw new RangeError(`slice [${start}, ${end}) outside 0..${n}`);
  const len = end - start;
  const out = allocFloat32Unset(outer * len * inner);
  for (let o = 0; o < outer; o++) {
    out.set(x.data.subarray((o * n + start) * inner, (o * n + end) * inner), o * len * inner);
  }
  const t = new Tensor(
    out,
    x.shape.map((s, i) => (i === a ? len : s)),
  );
  if (needsGrad(x)) {
    record(t, (g) => {
      const gx = x.gradBuffer();
      for (let o = 0; o < outer; o++) {
        const src = o * len * inner;
        const dst = (o * n + start) * inner;
        for (let i = 0; i < len * inner; i++) gx[dst + i] = gx[dst + i]! + g[src + i]!;
      }
    });
  }
  return t;
}

/** Concatenation along `axis`; all other dims must agree. */
export function concat(xs: readonly Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new RangeError("concat of nothing");
  const first = xs[0]!;
  const { a, outer, inner } = blocks(first.shape, axis);
  for (const x of xs) {
    if (x.rank !== first.rank || x.shape.some((d, i) => i !== a && d !== first.shape[i])) {
      throw new RangeError(`concat: shape [${x.shape}] does not match [${first.shape}] off axis ${axis}`);
    }
  }
  const lens = xs.map((x) => x.shape[a]!);
  const total = lens.reduce((p, d) => p + d, 0);
  const out = allocFloat32Unset(outer * total * inner);
  for (let o = 0; o < outer; o++) {
    let at = o * total * inner;
    xs.forEach((x, j) => {
      const len = lens[j]! * inner;
      out.set(x.data.subarray(o * len, (o + 1) * len), at);
      at += len;
    });
  }
  const t = new Tensor(
    out,
    first.shape.map((s, i) => (i === a ? total : s)),
  );
  if (needsGrad(...xs)) {
    record(t, (g) => {
      let offset = 0;
      xs.forEach((x, j) => {
        const len = lens[j]! * inner;
        if (x.requiresGrad) {
          const gx = x.gradBuffer();
          for (let o = 0; o < outer; o++) {
            const src = o * total * inner + offset;
            for (let i = 0; i < len; i++) gx[o * len + i] = gx[o * len + i]! + g[src + i]!;
          }
        }
        offset += len;
      });
    });
  }
  return t;
}
