import { describe, expect, it } from "vitest";
import { gradCheck } from "../../src/tensor/gradcheck.js";
import { mul } from "../../src/tensor/ops/elementwise.js";
import { needsGrad, record } from "../../src/tensor/tape.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { randTensor, seeded } from "./helpers.js";

/** x² with a backward that is wrong by `relError` (2x·(1+relError)) on element `bad` only. */
function squareWithBadGrad(x: Tensor, bad: number, relError: number): Tensor {
  const y = new Tensor(
    x.data.map((v) => v * v),
    x.shape,
  );
  if (needsGrad(x)) {
    record(y, (g) => {
      const gx = x.gradBuffer();
      for (let i = 0; i < gx.length; i++)
        gx[i] = gx[i]! + g[i]! * 2 * x.data[i]! * (i === bad ? 1 + relError : 1);
    });
  }
  return y;
}

describe("gradCheck", () => {
  it("accepts a correct gradient", () => {
    const r = gradCheck(([x]) => squareWithBadGrad(x!, -1, 0), [randTensor(seeded(1), [6], 0.5, 1)]);
    expect(r.ok).toBe(true);
    expect(r.checked).toBe(6);
  });

  it("catches a gradient that is 5% off on a single element and reports where", () => {
    const r = gradCheck(([x]) => squareWithBadGrad(x!, 3, 0.05), [randTensor(seeded(1), [6], 0.5, 1)]);
    expect(r.ok).toBe(false);
    expect(r.mismatches).toHaveLength(1);
    expect(r.mismatches[0]!.index).toBe(3);
  });

  it("catches a missing gradient contribution (input used twice, one path dropped)", () => {
    const dropSecond = (x: Tensor): Tensor => {
      // y = x · stop_grad(x): the tape sees only one of the two factors.
      const frozen = new Tensor(x.data.slice(), x.shape);
      return mul(x, frozen);
    };
    const r = gradCheck(([x]) => dropSecond(x!), [randTensor(seeded(2), [4], 0.5, 1)]);
    expect(r.ok).toBe(false);
    expect(r.mismatches.length).toBe(4);
  });
});
