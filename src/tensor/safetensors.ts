import { readFileSync } from "node:fs";
import { endianness } from "node:os";
import { writeFileAtomicSync } from "../util/atomic.js";
import { InputError } from "../util/errors.js";

/**
 * The safetensors format (https://github.com/huggingface/safetensors): 8-byte little-endian header length N,
 * N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {string: string}},
 * then the raw little-endian tensor bytes; offsets are relative to the end of the header.
 * We write F32; we read F32, F16, BF16 and F64 (converted to float32).
 */

export interface NamedArray {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

export interface SafetensorsFile {
  readonly tensors: Map<string, NamedArray>;
  readonly metadata: Record<string, string>;
}

const BYTES_PER: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8 };
// Guard against absurd header lengths before allocating (the reference implementation uses 100 MB).
const MAX_HEADER_BYTES = 100_000_000;
// The format is little-endian; on little-endian hosts float32 bytes are copied wholesale.
const HOST_IS_LE = endianness() === "LE";

export function encodeSafetensors(
  tensors: ReadonlyMap<string, NamedArray>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    if (name === "__metadata__") throw new RangeError('a tensor may not be named "__metadata__"');
    const t = tensors.get(name)!;
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) {
      throw new RangeError(
        `tensor ${name}: shape [${t.shape}] has ${count} elements, data has ${t.data.length}`,
      );
    }
    header[name] = { dtype: "F32", shape: [...t.shape], data_offsets: [offset, offset + 4 * count] };
    offset += 4 * count;
  }
  let json = JSON.stringify(header);
  // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
  const jsonBytesLen = Buffer.byteLength(json, "utf8");
  json += " ".repeat((8 - ((8 + jsonBytesLen) % 8)) % 8);
  const headerBytes = Buffer.from(json, "utf8");
  const out = new Uint8Array(8 + headerBytes.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const name of names) {
    const data = tensors.get(name)!.data;
    if (HOST_IS_LE) {
      out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), pos);
      pos += data.byteLength;
    } else {
      for (let i = 0; i < data.length; i++, pos += 4) view.setFloat32(pos, data[i]!, true);
    }
  }
  return out;
}

/** Decodes a safetensors byte buffer; `source` names the file in error messages. */
export function decodeSafetensors(bytes: Uint8Array, source = "<buffer>"): SafetensorsFile {
  const fail = (reason: string): never => {
    throw new InputError(`${source}: not a valid safetensors file: ${reason}`);
  };
  if (bytes.length < 8) fail(`only ${bytes.length} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > MAX_HEADER_BYTES || 8 + headerLen > bytes.length) {
    fail(`header length ${headerLen} exceeds file size ${bytes.length}`);
  }
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 8, headerLen).toString("utf8"));
  } catch (err) {
    fail(`header is not JSON (${(err as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) fail("header is not an object");
  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;
  const tensors = new Map<string, NamedArray>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof raw !== "object" || raw === null) fail("__metadata__ is not an object");
      metadata = Object.fromEntries(Object.entries(raw as object).map(([k, v]) => [k, String(v)]));
      continue;
    }
    const entry = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dtype = entry?.dtype;
    if (typeof dtype !== "string" || !(dtype in BYTES_PER)) {
      fail(`tensor ${name}: unsupported dtype ${JSON.stringify(dtype)} (supported: F32, F16, BF16, F64)`);
    }
    const shape = entry.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      fail(`tensor ${name}: shape must be a list of non-negative integers`);
    }
    const offsets = entry.data_offsets;
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isInteger(o) && o >= 0) ||
      offsets[0] > offsets[1] ||
      offsets[1] > dataLen
    ) {
      fail(
        `tensor ${name}: data_offsets ${JSON.stringify(offsets)} outside the ${dataLen}-byte data section`,
      );
    }
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    const [begin, end] = offsets as [number, number];
    const width = BYTES_PER[dtype as string]!;
    if (end - begin !== count * width) {
      fail(
        `tensor ${name}: ${end - begin} bytes for shape [${shape}] of ${dtype} (expected ${count * width})`,
      );
    }
    tensors.set(name, {
      shape: shape as number[],
      data: decodeData(view, dataStart + begin, count, dtype as string),
    });
  }
  return { tensors, metadata };
}

function decodeData(view: DataView, at: number, count: number, dtype: string): Float32Array {
  const out = new Float32Array(count);
  switch (dtype) {
    case "F32":
      if (HOST_IS_LE) {
        new Uint8Array(out.buffer).set(new Uint8Array(view.buffer, view.byteOffset + at, 4 * count));
        break;
      }
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(at + 4 * i, true);
      break;
    case "F64":
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(at + 8 * i, true);
      break;
    case "BF16": {
      // bfloat16 is the top half of a float32.
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) u[i] = view.getUint16(at + 2 * i, true) << 16;
      break;
    }
    case "F16":
      for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(at + 2 * i, true));
      break;
  }
  return out;
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? Number.NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Writes named float32 tensors atomically (temp file + rename). */
export function saveSafetensors(
  path: string,
  tensors: ReadonlyMap<string, NamedArray>,
  metadata: Record<string, string> = {},
): void {
  writeFileAtomicSync(path, encodeSafetensors(tensors, metadata));
}

/** Reads every tensor of a safetensors file as float32. */
export function loadSafetensors(path: string): Map<string, NamedArray> {
  return loadSafetensorsFile(path).tensors;
}

/** Reads tensors and the string→string `__metadata__`. */
export function loadSafetensorsFile(path: string): SafetensorsFile {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new InputError(`cannot read safetensors file ${path}: ${(err as Error).message}`);
  }
  return decodeSafetensors(bytes, path);
}
