import { mul } from "./ops/elementwise.js";
import { sumAll } from "./ops/reduce.js";
import { Rng } from "./rng.js";
import { backward, clearTape, noGrad } from "./tape.js";
import { Tensor } from "./tensor.js";

export interface GradCheckOptions {
  /** Central-difference step (applied in float32, the actual step is measured after rounding). */
  eps?: number;
  atol?: number;
  rtol?: number;
  seed?: number;
  /** Check at most this many elements per input (a seeded sample), to bound the cost. */
  maxPerInput?: number;
}

export interface GradMismatch {
  input: number;
  index: number;
  analytic: number;
  numeric: number;
}

export interface GradCheckResult {
  ok: boolean;
  checked: number;
  maxAbsError: number;
  /** Up to 10 worst offenders. */
  mismatches: GradMismatch[];
}

/**
 * Compares the tape's gradients of a random projection Σ f(x)·R with central finite differences. The
 * projection and the differences are accumulated in float64 from the float32 outputs, and the step is the
 * float32-rounded one, so the only float32 error left is the op's own rounding (hence eps ~1e-3, rtol ~1e-2).
 * `f` must be deterministic (reseed any dropout inside it).
 */
export function gradCheck(
  f: (inputs: Tensor[]) => Tensor,
  inputs: Tensor[],
  options: GradCheckOptions = {},
): GradCheckResult {
  const eps = options.eps ?? 1e-3;
  const atol = options.atol ?? 1e-3;
  const rtol = options.rtol ?? 1e-2;
  const rng = new Rng(options.seed ?? 1234);
  const maxPer = options.maxPerInput ?? Infinity;

  for (const x of inputs) {
    x.requiresGrad = true;
    x.grad = null;
  }
  clearTape();
  const out = f(inputs);
  const R = Tensor.from(
    Array.from({ length: out.size }, () => rng.uniformIn(-1, 1)),
    out.shape,
  );
  backward(sumAll(mul(out, R)));
  const analytic = inputs.map((x) => x.grad?.slice() ?? new Float32Array(x.size));

  const project = (): number =>
    noGrad(() => {
      const y = f(inputs).data;
      let s = 0;
      for (let i = 0; i < y.length; i++) s += y[i]! * R.data[i]!;
      return s;
    });

  const mismatches: GradMismatch[] = [];
  let maxAbsError = 0;
  let checked = 0;
  inputs.forEach((x, inputIndex) => {
    const indices =
      x.size <= maxPer ? Array.from({ length: x.size }, (_, i) => i) : sampleIndices(rng, x.size, maxPer);
    for (const i of indices) {
      const orig = x.data[i]!;
      x.data[i] = orig + eps;
      const xp = x.data[i]!;
      const fp = project();
      x.data[i] = orig - eps;
      const xm = x.data[i]!;
      const fm = project();
      x.data[i] = orig;
      const numeric = (fp - fm) / (xp - xm);
      const a = analytic[inputIndex]![i]!;
      const err = Math.abs(a - numeric);
      checked++;
      maxAbsError = Math.max(maxAbsError, err);
      if (!(err <= atol + rtol * Math.abs(numeric)))
        mismatches.push({ input: inputIndex, index: i, analytic: a, numeric });
    }
  });
  mismatches.sort((p, q) => Math.abs(q.analytic - q.numeric) - Math.abs(p.analytic - p.numeric));
  return { ok: mismatches.length === 0, checked, maxAbsError, mismatches: mismatches.slice(0, 10) };
}

function sampleIndices(rng: Rng, n: number, k: number): number[] {
  const picked = new Set<number>();
  while (picked.size < k) picked.add(rng.int(n));
  return [...picked].sort((a, b) => a - b);
}
