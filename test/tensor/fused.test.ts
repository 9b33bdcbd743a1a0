import { describe, expect, it } from "vitest";
import { gradCheck } from "../../src/tensor/gradcheck.js";
import { gelu } from "../../src/tensor/ops/activation.js";
import { dropout, dropoutAdd, geluDropout } from "../../src/tensor/ops/dropout.js";
import { add, mul } from "../../src/tensor/ops/elementwise.js";
import { sumAll } from "../../src/tensor/ops/reduce.js";
import { Rng } from "../../src/tensor/rng.js";
import { backward } from "../../src/tensor/tape.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { randTensor, seeded } from "./helpers.js";

/** Values and input gradients of f under a random projection, for exact comparisons. */
function run(f: (xs: Tensor[]) => Tensor, inputs: Tensor[], proj: Tensor) {
  const xs = inputs.map((x) => new Tensor(x.data.slice(), x.shape, true));
  const y = f(xs);
  backward(sumAll(mul(y, proj)));
  return { y: [...y.data], grads: xs.map((x) => [...x.grad!]) };
}

describe("fused element-wise ops", () => {
  const rng = seeded(21);
  // Odd length: exercises the last unpaired draw.
  const x = randTensor(rng, [7, 9], -3, 3);
  const r = randTensor(rng, [7, 9]);
  const proj = randTensor(rng, [7, 9]);

  it("dropoutAdd passes a gradient check and equals add(dropout(x), residual) bit for bit", () => {
    for (const p of [0.2, 0.5]) {
      const fused = ([a, b]: Tensor[]) => dropoutAdd(a!, p, new Rng(3), b!);
      const plain = ([a, b]: Tensor[]) => add(dropout(a!, p, new Rng(3)), b!);
      expect(gradCheck(fused, [x, r]).mismatches).toEqual([]);
      expect(run(fused, [x, r], proj)).toEqual(run(plain, [x, r], proj));
    }
    // The generator advances exactly as much as for the unfused pair.
    const a = new Rng(9);
    const b = new Rng(9);
    dropoutAdd(x, 0.3, a, r);
    dropout(x, 0.3, b);
    expect(a.nextUint32()).toBe(b.nextUint32());
  });

  it("geluDropout passes a gradient check and equals dropout(gelu(x)) bit for bit", () => {
    for (const p of [0, 0.2, 0.5]) {
      const fused = ([a]: Tensor[]) => geluDropout(a!, p, new Rng(4));
      const plain = ([a]: Tensor[]) => dropout(gelu(a!), p, new Rng(4));
      expect(gradCheck(fused, [x]).mismatches).toEqual([]);
      expect(run(fused, [x], proj)).toEqual(run(plain, [x], proj));
    }
  });

  it("a fused result actually drops: not equal to the dropout-free value", () => {
    const y = dropoutAdd(x, 0.5, new Rng(1), r);
    expect([...y.data]).not.toEqual([...add(x, r).data]);
    expect([...geluDropout(x, 0.5, new Rng(1)).data]).not.toEqual([...gelu(x).data]);
  });
});
