/**
 * Lazy safetensors reading for model shards: only the JSON header is parsed up front, each tensor is read
 * from its file offset on demand (src/tensor/safetensors.ts reads whole files, fine for checkpoints but not
 * for a 13 GB Llama shard).
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { endianness } from "node:os";
import { InputError } from "../../util/errors.js";
import { bf16ToFloat, halfToFloat } from "../gguf/dequant.js";

export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
  /** Absolute byte range in the file. */
  begin: number;
  end: number;
}

const HOST_IS_LE = endianness() === "LE";
const ELEMENT_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8 };

export class LazySafetensors {
  private fd: number | null;

  private constructor(
    readonly path: string,
    readonly entries: ReadonlyMap<string, SafetensorsEntry>,
    readonly metadata: Record<string, string>,
    fd: number,
  ) {
    this.fd = fd;
  }

  static open(path: string): LazySafetensors {
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch (err) {
      throw new InputError(`${path}: cannot open safetensors file (${(err as Error).message})`);
    }
    try {
      const size = fstatSync(fd).size;
      const lenBuf = Buffer.alloc(8);
      if (size < 8 || readSync(fd, lenBuf, 0, 8, 0) !== 8)
        throw new InputError(`${path}: not a safetensors file`);
      const headerLen = Number(lenBuf.readBigUInt64LE(0));
      if (headerLen > 100_000_000 || 8 + headerLen > size) {
        throw new InputError(`${path}: corrupt safetensors header length ${headerLen}`);
      }
      const headerBuf = Buffer.alloc(headerLen);
      readSync(fd, headerBuf, 0, headerLen, 8);
      let header: Record<string, unknown>;
      try {
        header = JSON.parse(headerBuf.toString("utf8")) as Record<string, unknown>;
      } catch (err) {
        throw new InputError(`${path}: safetensors header is not JSON (${(err as Error).message})`);
      }
      const entries = new Map<string, SafetensorsEntry>();
      let metadata: Record<string, string> = {};
      for (const [name, raw] of Object.entries(header)) {
        if (name === "__metadata__") {
          metadata = raw as Record<string, string>;
          continue;
        }
        const e = raw as { dtype?: string; shape?: number[]; data_offsets?: [number, number] };
        if (!e.dtype || !Array.isArray(e.shape) || !Array.isArray(e.data_offsets)) {
          throw new InputError(`${path}: tensor ${name} lacks dtype, shape or data_offsets`);
        }
        const begin = 8 + headerLen + e.data_offsets[0];
        const end = 8 + headerLen + e.data_offsets[1];
        if (end > size || begin > end) throw new InputError(`${path}: tensor ${name} lies outside the file`);
        entries.set(name, { dtype: e.dtype, shape: e.shape, begin, end });
      }
      return new LazySafetensors(path, entries, metadata, fd);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  read(name: string): Float32Array {
    const e = this.entries.get(name);
    if (!e) throw new InputError(`${this.path}: no tensor ${name}`);
    if (this.fd === null) throw new Error(`${this.path}: file is closed`);
    const per = ELEMENT_BYTES[e.dtype];
    if (!per)
      throw new InputError(
        `${this.path}: tensor ${name} has dtype ${e.dtype} (supported: F32, F16, BF16, F64)`,
      );
    const count = e.shape.reduce((a, b) => a * b, 1);
    if (count * per !== e.end - e.begin) {
      throw new InputError(
        `${this.path}: tensor ${name} has ${e.end - e.begin} bytes for shape [${e.shape}]`,
      );
    }
    const buf = Buffer.alloc(e.end - e.begin);
    readSync(this.fd, buf, 0, buf.length, e.begin);
    if (e.dtype === "F32" && HOST_IS_LE) {
      // Buffer.alloc may hand back a pooled, unaligned view; copy into a fresh aligned array.
      return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
    }
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) {
      switch (e.dtype) {
        case "F32":
          out[i] = buf.readFloatLE(i * 4);
          break;
        case "F16":
          out[i] = halfToFloat(buf.readUInt16LE(i * 2));
          break;
        case "BF16":
          out[i] = bf16ToFloat(buf.readUInt16LE(i * 2));
          break;
        default:
          out[i] = buf.readDoubleLE(i * 8);
      }
    }
    return out;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
