/**
 * GGUF on-disk vocabulary (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md).
 * Dimensions follow ggml: `dims[0]` is the contiguous (fastest-varying) axis, so a PyTorch weight of
 * shape [out, in] is stored with dims [in, out].
 */

/** Metadata value types, as numbered in the file. */
export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** Tensor element types (subset of ggml_type that we read or write). */
export enum GgmlType {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
}

/** Elements per block and bytes per block; plain types are blocks of one element. */
export const GGML_BLOCK: Readonly<Partial<Record<GgmlType, { elements: number; bytes: number }>>> = {
  [GgmlType.F32]: { elements: 1, bytes: 4 },
  [GgmlType.F16]: { elements: 1, bytes: 2 },
  [GgmlType.BF16]: { elements: 1, bytes: 2 },
  [GgmlType.F64]: { elements: 1, bytes: 8 },
  [GgmlType.I8]: { elements: 1, bytes: 1 },
  [GgmlType.I16]: { elements: 1, bytes: 2 },
  [GgmlType.I32]: { elements: 1, bytes: 4 },
  [GgmlType.I64]: { elements: 1, bytes: 8 },
  [GgmlType.Q4_0]: { elements: 32, bytes: 18 },
  [GgmlType.Q4_1]: { elements: 32, bytes: 20 },
  [GgmlType.Q5_0]: { elements: 32, bytes: 22 },
  [GgmlType.Q5_1]: { elements: 32, bytes: 24 },
  [GgmlType.Q8_0]: { elements: 32, bytes: 34 },
  [GgmlType.Q8_1]: { elements: 32, bytes: 36 },
  [GgmlType.Q2_K]: { elements: 256, bytes: 84 },
  [GgmlType.Q3_K]: { elements: 256, bytes: 110 },
  [GgmlType.Q4_K]: { elements: 256, bytes: 144 },
  [GgmlType.Q5_K]: { elements: 256, bytes: 176 },
  [GgmlType.Q6_K]: { elements: 256, bytes: 210 },
  [GgmlType.Q8_K]: { elements: 256, bytes: 292 },
};

export function ggmlTypeName(type: number): string {
  return GgmlType[type] ?? `type${type}`;
}

/** Bytes taken by `count` elements of `type`; throws for unknown types or a count that splits a block. */
export function ggmlByteSize(type: GgmlType, count: number): number {
  const block = GGML_BLOCK[type];
  if (!block) throw new Error(`unsupported ggml tensor type ${ggmlTypeName(type)}`);
  if (count % block.elements !== 0) {
    throw new Error(
      `${count} elements is not a multiple of the ${ggmlTypeName(type)} block (${block.elements})`,
    );
  }
  return (count / block.elements) * block.bytes;
}

/** A scalar metadata value. 64-bit integers are returned as numbers (exact up to 2^53). */
export type GgufScalar = number | boolean | string;

export type GgufValue =
  | { type: Exclude<GgufValueType, GgufValueType.ARRAY>; value: GgufScalar }
  | { type: GgufValueType.ARRAY; itemType: GgufValueType; value: GgufScalar[] };

export interface GgufTensorInfo {
  name: string;
  /** ggml order: dims[0] is contiguous. */
  dims: number[];
  type: GgmlType;
  /** Offset relative to the start of the data section. */
  offset: number;
  /** Absolute offset in the file. */
  fileOffset: number;
  elements: number;
  bytes: number;
}

export const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian
export const GGUF_DEFAULT_ALIGNMENT = 32;
