/**
 * A read-only table of strings stored as UTF-8 bytes in one buffer plus offsets, with an optional hash index
 * (open addressing, FNV-1a over the bytes, linear probing) from a string to its position. A million ids or
 * titles are then a few typed arrays, which V8's garbage collector does not trace, instead of a million
 * string objects and a Map of a million entries that every major GC marks (on a 1M-item catalogue those
 * made 99–118 ms mark-compact pauses in the server). Strings are decoded on demand (a short-lived string).
 */
export class StringTable {
  private readonly bytes: Buffer;
  /** String i is bytes[offsets[i] .. offsets[i + 1]). */
  private readonly offsets: Uint32Array;
  /** Hash slots: position + 1 of a string, 0 = empty; length a power of two, at most half full. */
  private readonly slots: Int32Array | null;
  private scratch = Buffer.allocUnsafeSlow(256);

  /** Strings 0..n-1 from `at(i)`; with `index`, `indexOf` works (a repeated string maps to its last position). */
  constructor(n: number, at: (i: number) => string, options: { index?: boolean } = {}) {
    this.offsets = new Uint32Array(n + 1);
    let total = 0;
    for (let i = 0; i < n; i++) {
      total += Buffer.byteLength(at(i), "utf8");
      if (total > 0xffffffff) throw new RangeError("string table: more than 4 GiB of text");
      this.offsets[i + 1] = total;
    }
    this.bytes = Buffer.allocUnsafeSlow(total);
    for (let i = 0; i < n; i++) {
      const s = at(i);
      const written = this.bytes.write(s, this.offsets[i]!, "utf8");
      if (written !== this.offsets[i + 1]! - this.offsets[i]!)
        throw new Error(`string table: string ${i} changed between the two passes`);
    }
    if (!options.index) {
      this.slots = null;
      return;
    }
    let size = 2;
    while (size < 2 * n) size *= 2;
    this.slots = new Int32Array(size);
    const mask = size - 1;
    for (let i = 0; i < n; i++) {
      const a = this.offsets[i]!;
      const b = this.offsets[i + 1]!;
      let slot = fnv1a(this.bytes, a, b) & mask;
      for (;;) {
        const held = this.slots[slot]!;
        if (held === 0 || this.equalsAt(held - 1, this.bytes, a, b)) {
          this.slots[slot] = i + 1;
          break;
        }
        slot = (slot + 1) & mask;
      }
    }
  }

  static from(strings: readonly string[], options: { index?: boolean } = {}): StringTable {
    return new StringTable(strings.length, (i) => strings[i]!, options);
  }

  get length(): number {
    return this.offsets.length - 1;
  }

  /** String i (a new JS string each call). */
  get(i: number): string {
    if (!(i >= 0 && i < this.length)) throw new RangeError(`string table: no string ${i} of ${this.length}`);
    return this.bytes.toString("utf8", this.offsets[i]!, this.offsets[i + 1]!);
  }

  /** Position of `s` (its last one), or -1. Needs the index. */
  indexOf(s: string): number {
    if (!this.slots) throw new Error("string table: built without an index");
    const need = Buffer.byteLength(s, "utf8");
    if (need > this.scratch.length) this.scratch = Buffer.allocUnsafeSlow(2 * need);
    const len = this.scratch.write(s, 0, "utf8");
    const mask = this.slots.length - 1;
    let slot = fnv1a(this.scratch, 0, len) & mask;
    for (;;) {
      const held = this.slots[slot]!;
      if (held === 0) return -1;
      if (this.equalsAt(held - 1, this.scratch, 0, len)) return held - 1;
      slot = (slot + 1) & mask;
    }
  }

  /** Whether string i equals bytes[a..b). */
  private equalsAt(i: number, bytes: Uint8Array, a: number, b: number): boolean {
    const start = this.offsets[i]!;
    if (this.offsets[i + 1]! - start !== b - a) return false;
    for (let k = 0; k < b - a; k++) if (this.bytes[start + k] !== bytes[a + k]) return false;
    return true;
  }
}

/** 32-bit FNV-1a of bytes[a..b). */
function fnv1a(bytes: Uint8Array, a: number, b: number): number {
  let h = 0x811c9dc5;
  for (let k = a; k < b; k++) h = Math.imul(h ^ bytes[k]!, 0x01000193);
  return h >>> 0;
}
