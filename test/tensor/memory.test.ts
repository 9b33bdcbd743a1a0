import { describe, expect, it } from "vitest";
import { allocFloat32, BufferArena, isArenaBuffer, withArena } from "../../src/tensor/memory.js";
import { linear } from "../../src/tensor/ops/matmul.js";
import { sumAll } from "../../src/tensor/ops/reduce.js";
import { backward } from "../../src/tensor/tape.js";
import { Parameter, Tensor } from "../../src/tensor/tensor.js";

describe("BufferArena", () => {
  it("hands out ordinary zeroed memory outside an arena", () => {
    const b = allocFloat32(4);
    expect([...b]).toEqual([0, 0, 0, 0]);
    expect(isArenaBuffer(b)).toBe(false);
  });

  it("recycles buffers of the same length after the scope, zeroed again", () => {
    const arena = new BufferArena();
    const first = withArena(arena, () => {
      const b = allocFloat32(8);
      b.fill(3);
      return b;
    });
    expect(isArenaBuffer(first)).toBe(true);
    const second = withArena(arena, () => {
      const b = allocFloat32(8);
      expect([...b]).toEqual(new Array(8).fill(0));
      return b;
    });
    expect(second).toBe(first);
    expect(arena.size).toBe(32);
  });

  it("releases buffers when the callback throws, and nested scopes defer to the outer one", () => {
    const arena = new BufferArena();
    let inner: Float32Array | null = null;
    expect(() =>
      withArena(arena, () => {
        withArena(new BufferArena(), () => {
          inner = allocFloat32(2);
        });
        throw new Error("boom");
      }),
    ).toThrow("boom");
    const again = withArena(arena, () => allocFloat32(2));
    expect(again).toBe(inner);
  });

  it("keeps Parameter gradients out of the arena, intermediates in it", () => {
    const w = new Parameter("w", Float32Array.of(1, 2, 3, 4), [2, 2]);
    const x = Tensor.from([1, -1], [1, 2]);
    let hidden: Tensor | null = null;
    withArena(new BufferArena(), () => {
      hidden = linear(x, w, null);
      backward(sumAll(hidden));
    });
    expect(isArenaBuffer(hidden!.data)).toBe(true);
    expect(isArenaBuffer(w.grad!)).toBe(false);
    expect([...w.grad!]).toEqual([1, -1, 1, -1]);
  });
});
