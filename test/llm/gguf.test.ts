import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  bf16ToFloat,
  dequantize,
  floatToBf16,
  floatToHalf,
  halfToFloat,
  quantize,
} from "../../src/llm/gguf/dequant.js";
import { GgufFile } from "../../src/llm/gguf/reader.js";
import { GgmlType, type GgufValue, GgufValueType } from "../../src/llm/gguf/types.js";
import { encodeGguf, gguf, writeGguf } from "../../src/llm/gguf/writer.js";
import { InputError } from "../../src/util/errors.js";
import { TINY_LLAMA2_GGUF } from "./shared-model.js";

const tmp = () => mkdtempSync(join(tmpdir(), "llamarec-gguf-"));

describe("half / bfloat16 conversion", () => {
  it("round-trips representable values and rounds to nearest even", () => {
    for (const v of [0, 1, -2, 0.5, 65504, 6.103515625e-5, 2 ** -24, -0.000244140625]) {
      expect(halfToFloat(floatToHalf(v))).toBe(v);
    }
    expect(floatToHalf(1 + 2 ** -11)).toBe(0x3c00); // tie → even mantissa
    expect(floatToHalf(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(halfToFloat(floatToHalf(1e6))).toBe(Number.POSITIVE_INFINITY);
    expect(Number.isNaN(halfToFloat(floatToHalf(Number.NaN)))).toBe(true);
    expect(bf16ToFloat(floatToBf16(1.5))).toBe(1.5);
    expect(bf16ToFloat(floatToBf16(1 + 2 ** -8))).toBe(1); // tie → even
    expect(bf16ToFloat(floatToBf16(1 + 3 * 2 ** -8))).toBe(1 + 2 ** -6);
  });
});

describe("dequantize", () => {
  it("Q8_0: d · q per block of 32", () => {
    const block = new Uint8Array(34);
    new DataView(block.buffer).setUint16(0, floatToHalf(0.5), true);
    for (let j = 0; j < 32; j++) new DataView(block.buffer).setInt8(2 + j, j - 16);
    const out = dequantize(GgmlType.Q8_0, block, 32);
    expect(Array.from(out)).toEqual(Array.from({ length: 32 }, (_, j) => (j - 16) * 0.5));
  });

  it("Q8_0 quantize → dequantize is within half a step, matching ggml's roundf", () => {
    const x = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i) * 3);
    const y = dequantize(GgmlType.Q8_0, quantize(GgmlType.Q8_0, x), 64);
    for (let i = 0; i < 64; i++) expect(Math.abs(x[i]! - y[i]!)).toBeLessThan((3 / 127) * 0.51);
    const halves = Float32Array.from({ length: 32 }, (_, i) => (i === 0 ? 127 : i === 1 ? -0.5 : 0.5));
    const q = quantize(GgmlType.Q8_0, halves);
    expect(new Int8Array(q.buffer, 2, 32).slice(0, 3)).toEqual(Int8Array.from([127, -1, 1])); // ties away from 0
  });

  it("Q4_0: low nibbles are the first 16 values, high nibbles the next 16, offset 8", () => {
    const block = new Uint8Array(18);
    new DataView(block.buffer).setUint16(0, floatToHalf(2), true);
    for (let j = 0; j < 16; j++) block[2 + j] = (j & 0xf) | ((15 - j) << 4);
    const out = dequantize(GgmlType.Q4_0, block, 32);
    for (let j = 0; j < 16; j++) {
      expect(out[j]).toBe((j - 8) * 2);
      expect(out[j + 16]).toBe((15 - j - 8) * 2);
    }
  });

  it("Q4_K: 6-bit scales/mins, y = d·sc·q − dmin·m", () => {
    const block = new Uint8Array(144);
    const v = new DataView(block.buffer);
    v.setUint16(0, floatToHalf(0.5), true); // d
    v.setUint16(2, floatToHalf(0.25), true); // dmin
    // sub-blocks 0..3: scale j+1, min 2j (low 6 bits of bytes 0..7); sub-blocks 4..7 use bytes 8..11 + top bits
    for (let j = 0; j < 4; j++) {
      block[4 + j] = j + 1;
      block[4 + 4 + j] = 2 * j;
    }
    for (let j = 0; j < 4; j++) block[4 + 8 + j] = (j + 5) | ((j + 1) << 4); // sc = 5+j, m = 1+j for sub-block 4+j
    for (let i = 0; i < 128; i++) block[16 + i] = (i % 16) | ((15 - (i % 16)) << 4);
    const out = dequantize(GgmlType.Q4_K, block, 256);
    const scale = (s: number) => (s < 4 ? s + 1 : s + 1);
    const min = (s: number) => (s < 4 ? 2 * s : s - 3);
    for (let chunk = 0; chunk < 4; chunk++) {
      for (let l = 0; l < 32; l++) {
        const q = block[16 + chunk * 32 + l]!;
        const s1 = 2 * chunk;
        const s2 = 2 * chunk + 1;
        expect(out[chunk * 64 + l]).toBeCloseTo(0.5 * scale(s1) * (q & 0xf) - 0.25 * min(s1), 6);
        expect(out[chunk * 64 + 32 + l]).toBeCloseTo(0.5 * scale(s2) * (q >> 4) - 0.25 * min(s2), 6);
      }
    }
  });

  it("Q6_K: 4 low + 2 high bits, minus 32, times d·scale", () => {
    const block = new Uint8Array(210);
    const v = new DataView(block.buffer);
    for (let i = 0; i < 128; i++) block[i] = 0x21; // low nibble 1, high nibble 2
    for (let i = 0; i < 64; i++) block[128 + i] = 0b11100100; // per quarter: 0, 1, 2, 3
    for (let i = 0; i < 16; i++) v.setInt8(192 + i, i - 8);
    v.setUint16(208, floatToHalf(0.125), true);
    const out = dequantize(GgmlType.Q6_K, block, 256);
    // element (half n, quarter k, l): q = (nibble | hi_k << 4) - 32, scale index 8n + l/16 + 2k
    for (let n = 0; n < 2; n++) {
      for (let k = 0; k < 4; k++) {
        for (let l = 0; l < 32; l++) {
          const nibble = k < 2 ? 1 : 2;
          const q = (nibble | (k << 4)) - 32;
          const sc = 8 * n + (l >> 4) + 2 * k - 8;
          expect(out[n * 128 + k * 32 + l]).toBeCloseTo(0.125 * sc * q, 6);
        }
      }
    }
  });

  it("Q4_1 / Q5_0 / Q5_1: 4 low bits (+ a 5th from qh), scale d, offset −16 or min m", () => {
    const q41 = new Uint8Array(20);
    const v41 = new DataView(q41.buffer);
    v41.setUint16(0, floatToHalf(0.5), true);
    v41.setUint16(2, floatToHalf(-1), true);
    for (let j = 0; j < 16; j++) q41[4 + j] = j | ((15 - j) << 4);
    const o41 = dequantize(GgmlType.Q4_1, q41, 32);
    for (let j = 0; j < 16; j++) {
      expect(o41[j]).toBe(j * 0.5 - 1);
      expect(o41[j + 16]).toBe((15 - j) * 0.5 - 1);
    }
    // qh bit j → value j, bit j+16 → value j+16; set bits for even j only.
    let qh = 0;
    for (let j = 0; j < 32; j += 2) qh |= 1 << j;
    const q50 = new Uint8Array(22);
    const v50 = new DataView(q50.buffer);
    v50.setUint16(0, floatToHalf(2), true);
    v50.setUint32(2, qh >>> 0, true);
    for (let j = 0; j < 16; j++) q50[6 + j] = 3 | (5 << 4);
    const o50 = dequantize(GgmlType.Q5_0, q50, 32);
    for (let j = 0; j < 16; j++) {
      const hi = j % 2 === 0 ? 16 : 0;
      expect(o50[j]).toBe((3 + hi - 16) * 2);
      expect(o50[j + 16]).toBe((5 + hi - 16) * 2);
    }
    const q51 = new Uint8Array(24);
    const v51 = new DataView(q51.buffer);
    v51.setUint16(0, floatToHalf(2), true);
    v51.setUint16(2, floatToHalf(0.5), true);
    v51.setUint32(4, qh >>> 0, true);
    for (let j = 0; j < 16; j++) q51[8 + j] = 3 | (5 << 4);
    const o51 = dequantize(GgmlType.Q5_1, q51, 32);
    for (let j = 0; j < 16; j++) {
      const hi = j % 2 === 0 ? 16 : 0;
      expect(o51[j]).toBe((3 + hi) * 2 + 0.5);
      expect(o51[j + 16]).toBe((5 + hi) * 2 + 0.5);
    }
  });

  it("Q5_K: Q4_K plus a fifth bit per value from qh (bit 2c for the low nibbles of chunk c, 2c+1 for the high)", () => {
    const block = new Uint8Array(176);
    const v = new DataView(block.buffer);
    v.setUint16(0, floatToHalf(1), true);
    v.setUint16(2, floatToHalf(0.5), true);
    for (let j = 0; j < 4; j++) {
      block[4 + j] = 2; // scales of sub-blocks 0..3
      block[8 + j] = 1; // mins of sub-blocks 0..3
      block[12 + j] = 3 | (2 << 4); // sub-blocks 4..7: scale 3, min 2
    }
    for (let l = 0; l < 32; l++) block[16 + l] = l % 2 === 0 ? 0b01010101 : 0b10101010;
    for (let i = 0; i < 128; i++) block[48 + i] = 7 | (9 << 4);
    const out = dequantize(GgmlType.Q5_K, block, 256);
    for (let c = 0; c < 4; c++) {
      for (let l = 0; l < 32; l++) {
        const lowHi = l % 2 === 0 ? 16 : 0; // even l: bits 0,2,4,6 set
        const highHi = l % 2 === 0 ? 0 : 16; // odd l: bits 1,3,5,7 set
        const [sc1, m1] = c < 2 ? [2, 1] : [3, 2];
        const [sc2, m2] = c < 2 ? [2, 1] : [3, 2];
        expect(out[c * 64 + l]).toBe(sc1 * (7 + lowHi) - 0.5 * m1);
        expect(out[c * 64 + 32 + l]).toBe(sc2 * (9 + highHi) - 0.5 * m2);
      }
    }
  });

  it("rejects unsupported types and short buffers", () => {
    expect(() => dequantize(GgmlType.Q3_K, new Uint8Array(110), 256)).toThrow(/cannot dequantise/);
    expect(() => dequantize(GgmlType.F32, new Uint8Array(4), 2)).toThrow(/need 8 bytes/);
  });
});

describe("GGUF writer + reader", () => {
  it("round-trips metadata of every type, arrays and tensors, lazily", () => {
    const dir = tmp();
    const path = join(dir, "all.gguf");
    const meta = new Map<string, GgufValue>([
      ["general.architecture", gguf.str("llama")],
      ["u8", { type: GgufValueType.UINT8, value: 250 }],
      ["i8", { type: GgufValueType.INT8, value: -5 }],
      ["u16", { type: GgufValueType.UINT16, value: 65000 }],
      ["i16", { type: GgufValueType.INT16, value: -32000 }],
      ["u32", gguf.u32(4_000_000_000)],
      ["i32", gguf.i32(-7)],
      ["f32", gguf.f32(0.25)],
      ["bool", gguf.bool(true)],
      ["str", gguf.str("héllo ▁ 😀")],
      ["u64", gguf.u64(2 ** 40)],
      ["i64", { type: GgufValueType.INT64, value: -(2 ** 40) }],
      ["f64", { type: GgufValueType.FLOAT64, value: Math.PI }],
      ["arr.str", gguf.arr(GgufValueType.STRING, ["a", "", "▁b"])],
      ["arr.f32", gguf.arr(GgufValueType.FLOAT32, [1.5, -2])],
      ["arr.i32", gguf.arr(GgufValueType.INT32, [1, -2, 3])],
      ["general.alignment", gguf.u32(64)],
    ]);
    const m = Float32Array.from({ length: 64 * 3 }, (_, i) => (i % 7) - 3);
    writeGguf(path, meta, [
      { name: "a.f32", dims: [64, 3], type: GgmlType.F32, data: m },
      { name: "b.f16", dims: [64, 3], type: GgmlType.F16, data: m },
      { name: "c.bf16", dims: [64, 3], type: GgmlType.BF16, data: m },
      { name: "d.q8", dims: [64, 3], type: GgmlType.Q8_0, data: m },
      { name: "e.vec", dims: [5], type: GgmlType.F32, data: Float32Array.of(1, 2, 3, 4, 5) },
    ]);
    const f = GgufFile.open(path);
    try {
      expect(f.version).toBe(3);
      expect(f.alignment).toBe(64);
      expect(f.dataOffset % 64).toBe(0);
      for (const [k, v] of meta) expect(f.metadata.get(k), k).toEqual(v);
      expect(f.tensors.map((t) => t.name)).toEqual(["a.f32", "b.f16", "c.bf16", "d.q8", "e.vec"]);
      for (const t of f.tensors) expect(t.fileOffset % 64).toBe(0);
      expect(f.tensor("a.f32")!.dims).toEqual([64, 3]);
      for (const n of ["a.f32", "b.f16", "c.bf16"])
        expect(Array.from(f.readTensor(n))).toEqual(Array.from(m));
      const q = f.readTensor("d.q8");
      for (let i = 0; i < m.length; i++) expect(Math.abs(q[i]! - m[i]!)).toBeLessThan(0.02);
      expect(Array.from(f.readTensor("e.vec"))).toEqual([1, 2, 3, 4, 5]);
      expect(() => f.readTensor("nope")).toThrow(InputError);
    } finally {
      f.close();
    }
  });

  it("refuses a data length that does not match the dims", () => {
    expect(() =>
      encodeGguf(new Map(), [{ name: "x", dims: [4], type: GgmlType.F32, data: new Float32Array(3) }]),
    ).toThrow(/hold 4 values but data has 3/);
  });

  it("gives clear errors for non-GGUF, unsupported versions and truncated files", () => {
    const dir = tmp();
    const notGguf = join(dir, "x.gguf");
    writeFileSync(notGguf, Buffer.alloc(64, 1));
    expect(() => GgufFile.open(notGguf)).toThrow(/not a GGUF file/);
    const good = encodeGguf(new Map([["k", gguf.str("v")]]), [
      { name: "t", dims: [32], type: GgmlType.F32, data: new Float32Array(32) },
    ]);
    const v2 = Buffer.from(good);
    v2.writeUInt32LE(2, 4); // v2 has the same layout as v3 (v3 only added big-endian files)
    writeFileSync(join(dir, "v2.gguf"), v2);
    const f2 = GgufFile.open(join(dir, "v2.gguf"));
    expect(f2.version).toBe(2);
    expect(f2.get("k")).toBe("v");
    f2.close();
    const v1 = Buffer.from(good);
    v1.writeUInt32LE(1, 4);
    writeFileSync(join(dir, "v1.gguf"), v1);
    expect(() => GgufFile.open(join(dir, "v1.gguf"))).toThrow(/version 1 is not supported/);
    writeFileSync(join(dir, "cut.gguf"), good.subarray(0, good.length - 64));
    expect(() => GgufFile.open(join(dir, "cut.gguf"))).toThrow(/extends past the end/);
    writeFileSync(join(dir, "cut2.gguf"), good.subarray(0, 30));
    expect(() => GgufFile.open(join(dir, "cut2.gguf"))).toThrow(/truncated/);
    expect(() => GgufFile.open(join(dir, "missing.gguf"))).toThrow(/cannot open/);
  });

  it("reads the bundled llama-2-tiny-random.gguf (F16 matrices, 32k vocab)", () => {
    const f = GgufFile.open(TINY_LLAMA2_GGUF);
    try {
      expect(f.architecture).toBe("llama");
      expect((f.get("tokenizer.ggml.tokens") as string[]).length).toBe(32000);
      expect(f.get("llama.embedding_length")).toBe(8);
      const emb = f.readTensor("token_embd.weight");
      expect(emb.length).toBe(8 * 32000);
      expect(emb.every(Number.isFinite)).toBe(true);
      // Re-encoding the tensor as F16 reproduces the file's bytes exactly.
      const raw = f.readTensorBytes("blk.0.attn_q.weight");
      expect(Buffer.from(quantize(GgmlType.F16, f.readTensor("blk.0.attn_q.weight")))).toEqual(
        Buffer.from(raw),
      );
      expect(readFileSync(TINY_LLAMA2_GGUF).subarray(0, 4).toString()).toBe("GGUF");
    } finally {
      f.close();
    }
  });
});

describe("agreement with ggml's own quantize/dequantize (fixture from libggml-base.so)", () => {
  const fixturePath = join(dirname(fileURLToPath(import.meta.url)), "fixtures", "ggml-quants.json");
  const fixture = JSON.parse(readFileSync(fixturePath, "utf8")) as {
    count: number;
    input: string;
    types: Record<string, { bytes: string; decoded: string }>;
  };
  const floats = (b64: string) => {
    const buf = Buffer.from(b64, "base64");
    return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
  };
  const input = floats(fixture.input);

  for (const name of ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K", "F16", "BF16"]) {
    it(`${name}: our decoding of ggml's bytes is bit-identical to ggml's`, () => {
      const t = fixture.types[name]!;
      const type = GgmlType[name as keyof typeof GgmlType];
      const ours = dequantize(type, new Uint8Array(Buffer.from(t.bytes, "base64")), fixture.count);
      const theirs = floats(t.decoded);
      expect(Buffer.from(ours.buffer).equals(Buffer.from(theirs.buffer))).toBe(true);
      // and the encoding is meaningful: close to the input
      let err = 0;
      for (let i = 0; i < input.length; i++) err = Math.max(err, Math.abs(ours[i]! - input[i]!));
      expect(err).toBeLessThan(name === "Q8_0" || name === "F16" || name === "BF16" ? 0.1 : 1);
    });
  }

  for (const name of ["Q8_0", "F16", "BF16"]) {
    it(`${name}: our encoding is byte-identical to ggml's reference quantiser`, () => {
      const type = GgmlType[name as keyof typeof GgmlType];
      const ours = quantize(type, input);
      expect(Buffer.from(ours).equals(Buffer.from(fixture.types[name]!.bytes, "base64"))).toBe(true);
    });
  }
});
