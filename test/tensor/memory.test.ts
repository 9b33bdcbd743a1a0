import { describe, expect, it } from "vitest";
import { allocFloat32, BufferArena, isArenaBuffer, sizeClass, withArena } from "../../src/tensor/memory.js";
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
    expect(second.buffer).toBe(first.buffer);
    expect(arena.size).toBe(64 * 4); // the smallest size class
  });

  it("stays bounded when every step asks for slightly different lengths", () => {
    // Training batches differ in their number of labelled rows; exact-length free lists leaked ~30 MB/step.
    const arena = new BufferArena();
    for (let step = 0; step < 200; step++) {
      withArena(arena, () => {
        const a = allocFloat32(10_000 + step * 7);
        const b = allocFloat32(3_000 + step * 3);
        expect(a.length).toBe(10_000 + step * 7);
        expect(b.length).toBe(3_000 + step * 3);
      });
    }
    expect(arena.size).toBeLessThan(8 * (11_400 + 3_600) * 4);
  });

  it("rounds sizes up by at most 25%", () => {
    for (const n of [1, 64, 65, 100, 1000, 4097, 123_457]) {
      const c = sizeClass(n);
      expect(c).toBeGreaterThanOrEqual(n);
      expect(c).toBeLessThanOrEqual(Math.max(64, n * 1.25));
    }
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
    expect(again.buffer).toBe((inner as Float32Array | null)!.buffer);
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
