/**
 * GGUF reader (versions 2 and 3). Parses the header, metadata and tensor table once; tensor data stays on
 * disk and is read one tensor at a time by file offset, so a 7B file never has to fit in memory.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { InputError } from "../../util/errors.js";
import { dequantize } from "./dequant.js";
import {
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  type GgmlType,
  type GgufScalar,
  type GgufTensorInfo,
  type GgufValue,
  GgufValueType,
  ggmlByteSize,
  ggmlTypeName,
} from "./types.js";

const CHUNK = 1 << 20;

/** Sequential little-endian reads over a file descriptor, refilled in 1 MiB chunks. */
class FileCursor {
  private buf = Buffer.alloc(0);
  private bufStart = 0;
  pos = 0;

  constructor(
    private readonly fd: number,
    private readonly size: number,
    private readonly path: string,
  ) {}

  private ensure(n: number): number {
    const rel = this.pos - this.bufStart;
    if (rel >= 0 && rel + n <= this.buf.length) return rel;
    if (this.pos + n > this.size) {
      throw new InputError(`${this.path}: truncated GGUF file (wanted ${n} bytes at offset ${this.pos})`);
    }
    const len = Math.min(Math.max(n, CHUNK), this.size - this.pos);
    this.buf = Buffer.alloc(len);
    readSync(this.fd, this.buf, 0, len, this.pos);
    this.bufStart = this.pos;
    return 0;
  }

  u8(): number {
    const at = this.ensure(1);
    this.pos += 1;
    return this.buf.readUInt8(at);
  }
  i8(): number {
    const at = this.ensure(1);
    this.pos += 1;
    return this.buf.readInt8(at);
  }
  u16(): number {
    const at = this.ensure(2);
    this.pos += 2;
    return this.buf.readUInt16LE(at);
  }
  i16(): number {
    const at = this.ensure(2);
    this.pos += 2;
    return this.buf.readInt16LE(at);
  }
  u32(): number {
    const at = this.ensure(4);
    this.pos += 4;
    return this.buf.readUInt32LE(at);
  }
  i32(): number {
    const at = this.ensure(4);
    this.pos += 4;
    return this.buf.readInt32LE(at);
  }
  f32(): number {
    const at = this.ensure(4);
    this.pos += 4;
    return this.buf.readFloatLE(at);
  }
  f64(): number {
    const at = this.ensure(8);
    this.pos += 8;
    return this.buf.readDoubleLE(at);
  }
  u64(): number {
    const at = this.ensure(8);
    this.pos += 8;
    return Number(this.buf.readBigUInt64LE(at));
  }
  i64(): number {
    const at = this.ensure(8);
    this.pos += 8;
    return Number(this.buf.readBigInt64LE(at));
  }
  string(): string {
    const len = this.u64();
    if (len > this.size)
      throw new InputError(`${this.path}: corrupt string length ${len} at ${this.pos - 8}`);
    const at = this.ensure(len);
    this.pos += len;
    return this.buf.toString("utf8", at, at + len);
  }
}

// 1e-5 stored as f32 reads back as 9.999999747e-6; show the shortest decimal with the same f32 value.
function shortestFloat32(x: number): number {
  if (!Number.isFinite(x)) return x;
  for (let p = 1; p <= 9; p++) {
    const y = Number(x.toPrecision(p));
    if (Math.fround(y) === x) return y;
  }
  return x;
}

function readScalar(c: FileCursor, type: GgufValueType, path: string): GgufScalar {
  switch (type) {
    case GgufValueType.UINT8:
      return c.u8();
    case GgufValueType.INT8:
      return c.i8();
    case GgufValueType.UINT16:
      return c.u16();
    case GgufValueType.INT16:
      return c.i16();
    case GgufValueType.UINT32:
      return c.u32();
    case GgufValueType.INT32:
      return c.i32();
    case GgufValueType.FLOAT32:
      return shortestFloat32(c.f32());
    case GgufValueType.BOOL:
      return c.u8() !== 0;
    case GgufValueType.STRING:
      return c.string();
    case GgufValueType.UINT64:
      return c.u64();
    case GgufValueType.INT64:
      return c.i64();
    case GgufValueType.FLOAT64:
      return c.f64();
    default:
      throw new InputError(`${path}: unknown GGUF metadata type ${type} at offset ${c.pos - 4}`);
  }
}

function readValue(c: FileCursor, type: GgufValueType, path: string): GgufValue {
  if (type === GgufValueType.ARRAY) {
    const itemType = c.u32() as GgufValueType;
    const n = c.u64();
    if (itemType === GgufValueType.ARRAY)
      throw new InputError(`${path}: nested GGUF arrays are not supported`);
    const value: GgufScalar[] = new Array(n);
    for (let i = 0; i < n; i++) value[i] = readScalar(c, itemType, path);
    return { type, itemType, value };
  }
  return { type, value: readScalar(c, type, path) } as GgufValue;
}

export class GgufFile {
  private fd: number | null;

  private constructor(
    readonly path: string,
    readonly version: number,
    readonly metadata: ReadonlyMap<string, GgufValue>,
    readonly tensors: readonly GgufTensorInfo[],
    readonly alignment: number,
    readonly dataOffset: number,
    fd: number,
  ) {
    this.fd = fd;
  }

  /** Opens and parses the header; keep the object open while reading tensors, then close(). */
  static open(path: string): GgufFile {
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch (err) {
      throw new InputError(`${path}: cannot open GGUF file (${(err as Error).message})`);
    }
    try {
      const size = fstatSync(fd).size;
      const c = new FileCursor(fd, size, path);
      if (size < 24 || c.u32() !== GGUF_MAGIC) throw new InputError(`${path}: not a GGUF file (bad magic)`);
      const version = c.u32();
      if (version !== 2 && version !== 3) {
        throw new InputError(`${path}: GGUF version ${version} is not supported (only 2 and 3)`);
      }
      const tensorCount = c.u64();
      const kvCount = c.u64();
      const metadata = new Map<string, GgufValue>();
      for (let i = 0; i < kvCount; i++) {
        const key = c.string();
        const type = c.u32() as GgufValueType;
        metadata.set(key, readValue(c, type, `${path} (key ${key})`));
      }
      const alignValue = metadata.get("general.alignment")?.value;
      const alignment = typeof alignValue === "number" ? alignValue : GGUF_DEFAULT_ALIGNMENT;
      const infos: Omit<GgufTensorInfo, "fileOffset">[] = [];
      for (let i = 0; i < tensorCount; i++) {
        const name = c.string();
        const nDims = c.u32();
        const dims: number[] = [];
        for (let d = 0; d < nDims; d++) dims.push(c.u64());
        const type = c.u32() as GgmlType;
        const offset = c.u64();
        const elements = dims.reduce((a, b) => a * b, 1);
        let bytes: number;
        try {
          bytes = ggmlByteSize(type, elements);
        } catch {
          bytes = Number.NaN; // unknown type: listed, but readTensor will refuse it
        }
        infos.push({ name, dims, type, offset, elements, bytes });
      }
      const dataOffset = Math.ceil(c.pos / alignment) * alignment;
      const tensors = infos.map((t) => ({ ...t, fileOffset: dataOffset + t.offset }));
      for (const t of tensors) {
        if (Number.isFinite(t.bytes) && t.fileOffset + t.bytes > size) {
          throw new InputError(`${path}: tensor ${t.name} extends past the end of the file`);
        }
      }
      return new GgufFile(path, version, metadata, tensors, alignment, dataOffset, fd);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  /** The value of a metadata key (arrays as JS arrays), or undefined. */
  get(key: string): GgufScalar | GgufScalar[] | undefined {
    return this.metadata.get(key)?.value;
  }

  /** The architecture named by general.architecture (e.g. "llama", "qwen2"). */
  get architecture(): string {
    return String(this.get("general.architecture") ?? "");
  }

  tensor(name: string): GgufTensorInfo | undefined {
    return this.tensors.find((t) => t.name === name);
  }

  /** The raw encoded bytes of one tensor. */
  readTensorBytes(name: string): Uint8Array {
    const info = this.requireTensor(name);
    if (this.fd === null) throw new Error(`${this.path}: file is closed`);
    const buf = Buffer.alloc(info.bytes);
    readSync(this.fd, buf, 0, info.bytes, info.fileOffset);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  /** One tensor decoded to float32, in ggml order (dims[0] contiguous = row-major [..., dims[1], dims[0]]). */
  readTensor(name: string): Float32Array {
    const info = this.requireTensor(name);
    return dequantize(info.type, this.readTensorBytes(name), info.elements);
  }

  private requireTensor(name: string): GgufTensorInfo {
    const info = this.tensor(name);
    if (!info) throw new InputError(`${this.path}: no tensor named ${name}`);
    if (!Number.isFinite(info.bytes)) {
      throw new InputError(`${this.path}: tensor ${name} has unsupported type ${ggmlTypeName(info.type)}`);
    }
    return info;
  }
}
