/**
 * GGUF v3 writer for the files we produce ourselves: tiny random models and LoRA adapters. The whole file
 * is assembled in memory (these are small) and written atomically.
 */
import { writeFileAtomicSync } from "../../util/atomic.js";
import { quantize } from "./dequant.js";
import {
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  type GgmlType,
  type GgufScalar,
  type GgufValue,
  GgufValueType,
} from "./types.js";

export interface GgufTensorToWrite {
  name: string;
  /** ggml order: dims[0] contiguous. A PyTorch [out, in] weight is dims [in, out]. */
  dims: number[];
  /** F32, F16, BF16 or Q8_0. */
  type: GgmlType;
  /** Row-major values; length = product of dims. */
  data: Float32Array;
}

/** Typed metadata constructors, so the file says exactly what llama.cpp expects (e.g. u32 vs i32). */
export const gguf = {
  u32: (value: number): GgufValue => ({ type: GgufValueType.UINT32, value }),
  i32: (value: number): GgufValue => ({ type: GgufValueType.INT32, value }),
  u64: (value: number): GgufValue => ({ type: GgufValueType.UINT64, value }),
  f32: (value: number): GgufValue => ({ type: GgufValueType.FLOAT32, value }),
  bool: (value: boolean): GgufValue => ({ type: GgufValueType.BOOL, value }),
  str: (value: string): GgufValue => ({ type: GgufValueType.STRING, value }),
  arr: (itemType: GgufValueType, value: GgufScalar[]): GgufValue => ({
    type: GgufValueType.ARRAY,
    itemType,
    value,
  }),
};

/** Growable little-endian byte sink. */
class ByteSink {
  private buf = Buffer.alloc(1 << 16);
  length = 0;

  private reserve(n: number): number {
    if (this.length + n > this.buf.length) {
      const next = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
      this.buf.copy(next, 0, 0, this.length);
      this.buf = next;
    }
    const at = this.length;
    this.length += n;
    return at;
  }
  u8(v: number) {
    const at = this.reserve(1);
    this.buf.writeUInt8(v, at);
  }
  i8(v: number) {
    const at = this.reserve(1);
    this.buf.writeInt8(v, at);
  }
  u16(v: number) {
    const at = this.reserve(2);
    this.buf.writeUInt16LE(v, at);
  }
  i16(v: number) {
    const at = this.reserve(2);
    this.buf.writeInt16LE(v, at);
  }
  u32(v: number) {
    const at = this.reserve(4);
    this.buf.writeUInt32LE(v, at);
  }
  i32(v: number) {
    const at = this.reserve(4);
    this.buf.writeInt32LE(v, at);
  }
  f32(v: number) {
    const at = this.reserve(4);
    this.buf.writeFloatLE(v, at);
  }
  f64(v: number) {
    const at = this.reserve(8);
    this.buf.writeDoubleLE(v, at);
  }
  u64(v: number) {
    const at = this.reserve(8);
    this.buf.writeBigUInt64LE(BigInt(v), at);
  }
  i64(v: number) {
    const at = this.reserve(8);
    this.buf.writeBigInt64LE(BigInt(v), at);
  }
  string(s: string) {
    const bytes = Buffer.from(s, "utf8");
    this.u64(bytes.length);
    this.bytes(bytes);
  }
  bytes(b: Uint8Array) {
    const at = this.reserve(b.length);
    this.buf.set(b, at);
  }
  padTo(alignment: number) {
    const pad = (alignment - (this.length % alignment)) % alignment;
    this.reserve(pad); // Buffer.alloc zero-fills
  }
  result(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

function writeScalar(sink: ByteSink, type: GgufValueType, v: GgufScalar, key: string): void {
  const num = () => {
    if (typeof v !== "number") throw new Error(`GGUF key ${key}: expected a number, got ${typeof v}`);
    return v;
  };
  switch (type) {
    case GgufValueType.UINT8:
      sink.u8(num());
      return;
    case GgufValueType.INT8:
      sink.i8(num());
      return;
    case GgufValueType.UINT16:
      sink.u16(num());
      return;
    case GgufValueType.INT16:
      sink.i16(num());
      return;
    case GgufValueType.UINT32:
      sink.u32(num());
      return;
    case GgufValueType.INT32:
      sink.i32(num());
      return;
    case GgufValueType.FLOAT32:
      sink.f32(num());
      return;
    case GgufValueType.FLOAT64:
      sink.f64(num());
      return;
    case GgufValueType.UINT64:
      sink.u64(num());
      return;
    case GgufValueType.INT64:
      sink.i64(num());
      return;
    case GgufValueType.BOOL:
      sink.u8(v ? 1 : 0);
      return;
    case GgufValueType.STRING:
      if (typeof v !== "string") throw new Error(`GGUF key ${key}: expected a string`);
      sink.string(v);
      return;
    default:
      throw new Error(`GGUF key ${key}: cannot write value type ${type}`);
  }
}

/** Serialise a GGUF v3 file to bytes. Metadata is written in insertion order. */
export function encodeGguf(
  metadata: ReadonlyMap<string, GgufValue>,
  tensors: readonly GgufTensorToWrite[],
): Uint8Array {
  const alignValue = metadata.get("general.alignment")?.value;
  const alignment = typeof alignValue === "number" ? alignValue : GGUF_DEFAULT_ALIGNMENT;
  const encoded = tensors.map((t) => {
    const count = t.dims.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) {
      throw new Error(
        `tensor ${t.name}: dims [${t.dims}] hold ${count} values but data has ${t.data.length}`,
      );
    }
    return quantize(t.type, t.data);
  });
  const sink = new ByteSink();
  sink.u32(GGUF_MAGIC);
  sink.u32(3);
  sink.u64(tensors.length);
  sink.u64(metadata.size);
  for (const [key, v] of metadata) {
    sink.string(key);
    sink.u32(v.type);
    if (v.type === GgufValueType.ARRAY) {
      sink.u32(v.itemType);
      sink.u64(v.value.length);
      for (const item of v.value) writeScalar(sink, v.itemType, item, key);
    } else {
      writeScalar(sink, v.type, v.value, key);
    }
  }
  let offset = 0;
  tensors.forEach((t, i) => {
    sink.string(t.name);
    sink.u32(t.dims.length);
    for (const d of t.dims) sink.u64(d);
    sink.u32(t.type);
    sink.u64(offset);
    offset += Math.ceil(encoded[i]!.length / alignment) * alignment;
  });
  sink.padTo(alignment);
  for (const bytes of encoded) {
    sink.bytes(bytes);
    sink.padTo(alignment);
  }
  return sink.result();
}

export function writeGguf(
  path: string,
  metadata: ReadonlyMap<string, GgufValue>,
  tensors: readonly GgufTensorToWrite[],
): void {
  writeFileAtomicSync(path, encodeGguf(metadata, tensors));
}
