import { describe, expect, it } from "vitest";
import { Dropout, LayerNorm, Linear } from "../../src/tensor/nn/layers.js";
import { Module } from "../../src/tensor/nn/module.js";
import { sumAll } from "../../src/tensor/ops/reduce.js";
import { Rng } from "../../src/tensor/rng.js";
import { backward, clearTape, noGrad, tapeLength } from "../../src/tensor/tape.js";
import { Tensor } from "../../src/tensor/tensor.js";

class Block extends Module {
  readonly fc: Linear;
  readonly layer_norm: LayerNorm;
  readonly drop: Dropout;
  constructor() {
    super();
    this.fc = this.registerModule("fc", new Linear(3, 2));
    this.layer_norm = this.registerModule("layer_norm", new LayerNorm(2));
    this.drop = this.registerModule("drop", new Dropout(0.5, new Rng(1)));
  }
  forward(x: Tensor): Tensor {
    return this.drop.forward(this.layer_norm.forward(this.fc.forward(x)));
  }
}

describe("Module", () => {
  it("names parameters by dotted path in registration order", () => {
    const m = new Block();
    expect(m.namedParameters("blocks.0.").map(([n]) => n)).toEqual([
      "blocks.0.fc.weight",
      "blocks.0.fc.bias",
      "blocks.0.layer_norm.weight",
      "blocks.0.layer_norm.bias",
    ]);
    expect(m.parameters()[0]!.name).toBe("fc.weight");
  });

  it("listing a submodule's parameters does not rename them", () => {
    class Outer extends Module {
      readonly inner = this.registerModule("inner", new Block());
      adopt(m: Module): void {
        this.registerModule("again", m);
      }
    }
    const o = new Outer();
    expect(o.parameters()[0]!.name).toBe("inner.fc.weight");
    expect(o.inner.namedParameters()[0]![0]).toBe("fc.weight");
    expect(o.inner.parameters()[0]!.name).toBe("inner.fc.weight");
    expect(() => new Outer().adopt(o.inner)).toThrow(/already belongs/);
  });

  it("train/eval reaches submodules; eval dropout is the identity", () => {
    const m = new Block();
    m.fc.weight.data.set([1, 0, 0, 0, 1, 0]);
    const x = Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]);
    m.eval();
    expect(m.drop.training).toBe(false);
    const y = m.forward(x).data;
    expect(y[0]).toBeCloseTo(-1, 4);
    expect(y[1]).toBeCloseTo(1, 4);
    m.train();
    expect(m.drop.training).toBe(true);
  });

  it("noGrad records nothing; gradients accumulate across backward calls", () => {
    const m = new Block().eval();
    m.fc.weight.data.set([1, 2, 3, 4, 5, 6]);
    m.layer_norm.weight.data.set([1, 2]);
    const x = Tensor.from([1, -2, 3], [1, 3]);
    clearTape();
    noGrad(() => m.forward(x));
    expect(tapeLength()).toBe(0);
    backward(sumAll(m.forward(x)));
    const once = m.layer_norm.bias.grad!.slice();
    backward(sumAll(m.forward(x)));
    expect([...m.layer_norm.bias.grad!]).toEqual([...once].map((v) => 2 * v));
    expect(tapeLength()).toBe(0);
  });

  it("stateDict/loadStateDict round trip and strict checks", () => {
    const a = new Block();
    a.fc.weight.data.set([1, 2, 3, 4, 5, 6]);
    const b = new Block();
    b.loadStateDict(a.stateDict());
    expect([...b.fc.weight.data]).toEqual([1, 2, 3, 4, 5, 6]);
    const bad = a.stateDict();
    bad.set("fc.weight", { shape: [3, 2], data: new Float32Array(6) });
    expect(() => b.loadStateDict(bad, "ckpt")).toThrow(/ckpt: weight fc.weight has shape \[3,2\]/);
    const missing = a.stateDict();
    missing.delete("fc.bias");
    expect(() => b.loadStateDict(missing)).toThrow(/missing weight fc.bias/);
  });
});
