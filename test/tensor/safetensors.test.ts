import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  decodeSafetensors,
  encodeSafetensors,
  loadSafetensors,
  loadSafetensorsFile,
  saveSafetensors,
} from "../../src/tensor/safetensors.js";
import { InputError } from "../../src/util/errors.js";

function build(header: object, data: number[]): Uint8Array {
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

describe("safetensors", () => {
  it("decodes a hand-built file with F32, F16, BF16 and metadata", () => {
    const bytes = build(
      {
        __metadata__: { format: "pt" },
        a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
        b: { dtype: "F16", shape: [1, 2], data_offsets: [8, 12] },
        c: { dtype: "BF16", shape: [], data_offsets: [12, 14] },
      },
      [
        // 1.5f, -2f (little-endian)
        0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0x00, 0xc0,
        // f16 1.0 = 0x3c00, −0.5 = 0xb800
        0x00, 0x3c, 0x00, 0xb8,
        // bf16 3.0 = 0x4040
        0x40, 0x40,
      ],
    );
    const { tensors, metadata } = decodeSafetensors(bytes);
    expect(metadata).toEqual({ format: "pt" });
    expect([...tensors.get("a")!.data]).toEqual([1.5, -2]);
    expect(tensors.get("b")!.shape).toEqual([1, 2]);
    expect([...tensors.get("b")!.data]).toEqual([1, -0.5]);
    expect(tensors.get("c")!.shape).toEqual([]);
    expect([...tensors.get("c")!.data]).toEqual([3]);
  });

  it("writes the exact layout: LE header length, 8-byte aligned data, sorted offsets", () => {
    const bytes = encodeSafetensors(
      new Map([
        ["z", { shape: [1], data: Float32Array.of(1) }],
        ["a", { shape: [2, 1], data: Float32Array.of(2, 3) }],
      ]),
    );
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
    const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString("utf8"));
    expect(header.a).toEqual({ dtype: "F32", shape: [2, 1], data_offsets: [0, 8] });
    expect(header.z).toEqual({ dtype: "F32", shape: [1], data_offsets: [8, 12] });
    expect(new DataView(bytes.buffer).getFloat32(8 + n + 8, true)).toBe(1);
  });

  it("round-trips through a file atomically, leaving no temp files", () => {
    const dir = mkdtempSync(join(tmpdir(), "st-"));
    const path = join(dir, "w.safetensors");
    const data = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i));
    saveSafetensors(path, new Map([["w", { shape: [10, 100], data }]]), { step: "7" });
    const back = loadSafetensorsFile(path);
    expect(back.metadata).toEqual({ step: "7" });
    expect(back.tensors.get("w")!.data).toEqual(data);
    expect(loadSafetensors(path).get("w")!.shape).toEqual([10, 100]);
    expect(readdirSync(dir)).toEqual(["w.safetensors"]);
  });

  it("names the file and the problem for corrupt input", () => {
    const dir = mkdtempSync(join(tmpdir(), "st-"));
    const path = join(dir, "bad.safetensors");
    writeFileSync(path, Buffer.from([1, 2, 3]));
    expect(() => loadSafetensors(path)).toThrow(InputError);
    expect(() => loadSafetensors(path)).toThrow(/bad\.safetensors.*only 3 bytes/);
    const good = encodeSafetensors(new Map([["w", { shape: [2], data: Float32Array.of(1, 2) }]]));
    expect(() => decodeSafetensors(good.subarray(0, good.length - 1), "trunc")).toThrow(
      /trunc.*data_offsets/,
    );
    const wrongSize = build(
      { w: { dtype: "F32", shape: [3], data_offsets: [0, 8] } },
      [0, 0, 0, 0, 0, 0, 0, 0],
    );
    expect(() => decodeSafetensors(wrongSize, "x")).toThrow(/expected 12/);
    const badDtype = build({ w: { dtype: "I8", shape: [1], data_offsets: [0, 1] } }, [0]);
    expect(() => decodeSafetensors(badDtype, "x")).toThrow(/unsupported dtype/);
    expect(readFileSync(path).length).toBe(3);
  });
});
