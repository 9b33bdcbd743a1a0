import { createHash } from "node:crypto";
import { createReadStream, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../util/atomic.js";
import type { Dataset, DatasetStats } from "./dataset.js";

/**
 * On-disk cache of prepared datasets. One file per key, `<cacheDir>/<key>.llds`, written atomically:
 *   bytes 0..3   magic "LLDS"
 *   bytes 4..7   format version (uint32 LE)
 *   bytes 8..11  length J of the JSON header (uint32 LE)
 *   J bytes      UTF-8 JSON: {name, numUsers, numItems, titles, userIds, itemIds, stats, extra}
 *   padding      to a multiple of 4
 *   Int32 LE     offsets[numUsers + 1] into the item stream (user u = offsets[u-1]..offsets[u])
 *   Int32 LE     items: each user's full sequence in order (train..., val, test)
 * The key is a hash of the source files' bytes plus the options that change the result, so editing a
 * source file or changing an option invalidates the entry (a new key); stale entries are simply unused.
 */
export const CACHE_FORMAT_VERSION = 1;
const MAGIC = 0x53444c4c; // "LLDS" little-endian

export const DEFAULT_CACHE_DIR = ".cache/llamarec/datasets";

/** SHA-256 of a file's bytes (streamed). */
export async function hashFile(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest("hex");
}

/** The cache key: SHA-256 over the format version, the files' content hashes and the options (as JSON). */
export async function cacheKey(files: readonly string[], options: unknown): Promise<string> {
  const hashes = await Promise.all(files.map(hashFile));
  const h = createHash("sha256");
  h.update(JSON.stringify({ v: CACHE_FORMAT_VERSION, files: hashes, options }));
  return h.digest("hex").slice(0, 32);
}

export function cachePath(cacheDir: string, key: string): string {
  return join(cacheDir, `${key}.llds`);
}

export interface CachedEntry<Extra> {
  dataset: Dataset;
  stats: DatasetStats;
  extra: Extra;
}

export function encodeCacheEntry<Extra>(entry: CachedEntry<Extra>): Buffer {
  const d = entry.dataset;
  const header = Buffer.from(
    JSON.stringify({
      name: d.name,
      numUsers: d.numUsers,
      numItems: d.numItems,
      titles: d.titles,
      userIds: d.userIds,
      itemIds: d.itemIds,
      stats: entry.stats,
      extra: entry.extra,
    }),
    "utf8",
  );
  const headerEnd = 12 + header.length;
  const dataStart = (headerEnd + 3) & ~3;
  let total = 0;
  for (let u = 1; u <= d.numUsers; u++) total += d.train[u]!.length + 2;
  const ints = new Int32Array(d.numUsers + 1 + total);
  let p = d.numUsers + 1;
  for (let u = 1; u <= d.numUsers; u++) {
    for (const i of d.train[u]!) ints[p++] = i;
    ints[p++] = d.val[u]!;
    ints[p++] = d.test[u]!;
    ints[u] = p - (d.numUsers + 1);
  }
  const buf = Buffer.alloc(dataStart + ints.byteLength);
  buf.writeUInt32LE(MAGIC, 0);
  buf.writeUInt32LE(CACHE_FORMAT_VERSION, 4);
  buf.writeUInt32LE(header.length, 8);
  header.copy(buf, 12);
  const le = new DataView(buf.buffer, buf.byteOffset + dataStart, ints.byteLength);
  for (let k = 0; k < ints.length; k++) le.setInt32(k * 4, ints[k]!, true);
  return buf;
}

/** Decodes a cache file; undefined when it is not a valid entry of this format version. */
export function decodeCacheEntry<Extra>(buf: Buffer): CachedEntry<Extra> | undefined {
  if (buf.length < 12 || buf.readUInt32LE(0) !== MAGIC || buf.readUInt32LE(4) !== CACHE_FORMAT_VERSION)
    return undefined;
  const len = buf.readUInt32LE(8);
  if (12 + len > buf.length) return undefined;
  let h: {
    name: string;
    numUsers: number;
    numItems: number;
    titles: string[];
    userIds: string[];
    itemIds: string[];
    stats: DatasetStats;
    extra: Extra;
  };
  try {
    h = JSON.parse(buf.toString("utf8", 12, 12 + len));
  } catch {
    return undefined;
  }
  const dataStart = (12 + len + 3) & ~3;
  const count = (buf.length - dataStart) / 4;
  if (!Number.isInteger(count) || count < h.numUsers + 1) return undefined;
  const view = new DataView(buf.buffer, buf.byteOffset + dataStart, count * 4);
  const at = (k: number): number => view.getInt32(k * 4, true);
  const base = h.numUsers + 1;
  const train: number[][] = [[]];
  const val: number[] = [0];
  const test: number[] = [0];
  let prev = 0;
  for (let u = 1; u <= h.numUsers; u++) {
    const end = at(u);
    if (end < prev + 2 || base + end > count) return undefined;
    const seq: number[] = new Array(end - prev - 2);
    for (let k = 0; k < seq.length; k++) seq[k] = at(base + prev + k);
    train.push(seq);
    val.push(at(base + end - 2));
    test.push(at(base + end - 1));
    prev = end;
  }
  if (base + prev !== count) return undefined;
  return {
    dataset: {
      name: h.name,
      numUsers: h.numUsers,
      numItems: h.numItems,
      train,
      val,
      test,
      titles: h.titles,
      userIds: h.userIds,
      itemIds: h.itemIds,
    },
    stats: h.stats,
    extra: h.extra,
  };
}

export function readCacheEntry<Extra>(path: string): CachedEntry<Extra> | undefined {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch {
    return undefined;
  }
  return decodeCacheEntry<Extra>(buf);
}

export async function writeCacheEntry<Extra>(path: string, entry: CachedEntry<Extra>): Promise<void> {
  await writeFileAtomic(path, encodeCacheEntry(entry));
}
