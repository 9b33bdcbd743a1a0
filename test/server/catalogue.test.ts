import { describe, expect, it } from "vitest";
import { Catalogue } from "../../src/server/catalogue.js";
import { StringTable } from "../../src/server/string-table.js";

describe("string table", () => {
  it("returns every string and finds every position, against a Map, over non-numeric and non-ASCII ids", () => {
    const strings = Array.from({ length: 5000 }, (_, i) =>
      i % 3 === 0 ? String(i) : i % 3 === 1 ? `tt${(i * 7919).toString(36)}` : `Amélie – 東京 ${i} 🎬`,
    );
    const t = StringTable.from(strings, { index: true });
    expect(t.length).toBe(strings.length);
    const map = new Map(strings.map((s, i) => [s, i]));
    for (let i = 0; i < strings.length; i++) {
      expect(t.get(i)).toBe(strings[i]);
      expect(t.indexOf(strings[i]!)).toBe(map.get(strings[i]!));
    }
  });

  it("answers -1 for strings it does not hold, including prefixes, extensions and the empty string", () => {
    const t = StringTable.from(["1", "12", "abc", "Ω"], { index: true });
    for (const s of ["", "0", "123", "ab", "abcd", "ABC", "Ω ", " 1", "01", "1.0"])
      expect(t.indexOf(s)).toBe(-1);
    expect(t.indexOf("12")).toBe(1);
    expect(t.indexOf("Ω")).toBe(3);
  });

  it("maps a repeated string to its last position (like Map.set) and holds the empty string", () => {
    const t = StringTable.from(["", "a", "b", "a"], { index: true });
    expect(t.indexOf("a")).toBe(3);
    expect(t.indexOf("")).toBe(0);
    expect(t.get(0)).toBe("");
    expect(t.get(1)).toBe("a");
  });

  it("finds strings whose hashes collide (a nearly full small table, long keys beyond the scratch buffer)", () => {
    const long = "x".repeat(1000);
    const strings = [...Array.from({ length: 64 }, (_, i) => `k${i}`), `${long}1`, `${long}2`];
    const t = StringTable.from(strings, { index: true });
    for (const [i, s] of strings.entries()) expect(t.indexOf(s)).toBe(i);
    expect(t.indexOf(`${long}3`)).toBe(-1);
  });

  it("rejects positions out of range and lookups without an index", () => {
    const t = StringTable.from(["a"]);
    expect(() => t.get(1)).toThrow(RangeError);
    expect(() => t.get(-1)).toThrow(RangeError);
    expect(() => t.indexOf("a")).toThrow(/without an index/);
  });
});

describe("catalogue (compact storage)", () => {
  const ids = ["", "tt0114709", "42", "Amélie-2001", "7"];
  const titles = ["", "Toy Story (1995)", "Heat (1995)", "Amélie (2001)", "Se7en (1995)"];
  const users = ["", "alice", "1001"];
  const histories: number[][] = [[], [1, 2, 2], [4]];
  const catalogue = new Catalogue({
    numItems: 4,
    itemId: (i) => ids[i]!,
    title: (i) => titles[i]!,
    numUsers: 2,
    userId: (u) => users[u]!,
    history: (u) => histories[u]!,
  });

  it("maps raw ids (numeric or not) to dense ids and back; unknown ids are 0", () => {
    for (let i = 1; i <= 4; i++) {
      expect(catalogue.item(ids[i]!)).toBe(i);
      expect(catalogue.itemId(i)).toBe(ids[i]);
      expect(catalogue.title(i)).toBe(titles[i]);
    }
    for (const raw of ["", "0", "5", "tt0114708", "42 ", "amélie-2001", "07"])
      expect(catalogue.item(raw)).toBe(0);
    expect(catalogue.title(0)).toBe("");
    expect(catalogue.title(5)).toBe("");
  });

  it("keeps each known user's history; unknown users have none", () => {
    expect(catalogue.knownHistory("alice")).toEqual([1, 2, 2]);
    expect(catalogue.knownHistory("1001")).toEqual([4]);
    expect(catalogue.knownHistory("bob")).toEqual([]);
    expect(catalogue.knownHistory("")).toEqual([]);
  });

  it("counts popularity from the histories and orders the popular list by it, ties by id", () => {
    expect([...catalogue.popularity]).toEqual([0, 1, 2, 0, 1]);
    expect([...catalogue.popular]).toEqual([2, 1, 4, 3]);
  });

  it("takes a given popularity", () => {
    const c = new Catalogue({
      numItems: 3,
      itemId: (i) => `i${i}`,
      title: (i) => `Item ${i}`,
      numUsers: 0,
      userId: () => "",
      history: () => [],
      popularity: Float32Array.from([0, 1, 3, 2]),
    });
    expect([...c.popular]).toEqual([2, 3, 1]);
    expect(c.item("i3")).toBe(3);
    expect(c.knownHistory("i3")).toEqual([]);
  });
});
