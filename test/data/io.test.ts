import { describe, expect, it } from "vitest";
import { csvField, forEachRecord, parseDelimitedLine } from "../../src/data/io/csv.js";
import { firstInvalidUtf8, forEachLine, resolveInputPath } from "../../src/data/io/lines.js";
import { InputError } from "../../src/util/errors.js";
import { tempDir, writeFixture } from "./helpers.js";

describe("parseDelimitedLine", () => {
  it("splits plain lines", () => {
    expect(parseDelimitedLine("1,2,3.5,100").fields).toEqual(["1", "2", "3.5", "100"]);
    expect(parseDelimitedLine("a\tb", "\t").fields).toEqual(["a", "b"]);
    expect(parseDelimitedLine("a,,").fields).toEqual(["a", "", ""]);
  });
  it("handles quoted fields with commas and doubled quotes", () => {
    expect(parseDelimitedLine('11,"American President, The (1995)",Comedy').fields).toEqual([
      "11",
      "American President, The (1995)",
      "Comedy",
    ]);
    expect(parseDelimitedLine('1,"He said ""hi""",x').fields).toEqual(["1", 'He said "hi"', "x"]);
    expect(parseDelimitedLine('"",x').fields).toEqual(["", "x"]);
    expect(parseDelimitedLine('x,""').fields).toEqual(["x", ""]);
  });
  it("reports open quotes and garbage after a closing quote", () => {
    expect(parseDelimitedLine('1,"abc').open).toBe(true);
    expect(parseDelimitedLine('1,"abc"def,2').error).toMatch(/after closing quote/);
  });
  it("quotes fields that need it", () => {
    expect(csvField("plain")).toBe("plain");
    expect(csvField("a, b")).toBe('"a, b"');
    expect(csvField('say "x"')).toBe('"say ""x"""');
  });
});

describe("forEachLine / forEachRecord", () => {
  it("reads gzip transparently, strips BOM and CR, numbers lines from 1", async () => {
    const dir = tempDir();
    const p = writeFixture(dir, "x.txt.gz", "\ufeffa\r\nb\n\nc");
    const seen: [string, number][] = [];
    await forEachLine(p, (line, n) => {
      seen.push([line, n]);
    });
    expect(seen).toEqual([
      ["a", 1],
      ["b", 2],
      ["", 3],
      ["c", 4],
    ]);
  });
  it("detects gzip by magic bytes and falls back to name.gz", async () => {
    const dir = tempDir();
    writeFixture(dir, "r.csv.gz", "h\n1\n");
    const resolved = resolveInputPath(`${dir}/r.csv`);
    expect(resolved.endsWith("r.csv.gz")).toBe(true);
    expect(() => resolveInputPath(`${dir}/missing.csv`)).toThrow(InputError);
  });
  it("decodes multi-byte UTF-8 split across chunks and Latin-1", async () => {
    const dir = tempDir();
    const long = `${"é".repeat(700_000)}\nü`;
    const p = writeFixture(dir, "u.txt", long);
    const lines: string[] = [];
    await forEachLine(p, (l) => {
      lines.push(l);
    });
    expect(lines[0]!.length).toBe(700_000);
    expect(lines[0]!.includes("\ufffd")).toBe(false);
    const q = writeFixture(dir, "l.txt", Buffer.from([0x43, 0x61, 0x66, 0xe9])); // "Café" in Latin-1
    const l1: string[] = [];
    await forEachLine(q, (l) => l1.push(l), "latin1");
    expect(l1).toEqual(["Café"]);
  });
  it("stops at invalid UTF-8 with the file and line, suggesting --encoding latin1 (issue 7 §3)", async () => {
    const dir = tempDir();
    // Line 3 of a file > 1 MB (several read chunks), the bad byte after a multi-byte character.
    const head = Buffer.from(`${"é".repeat(600_000)}\nline two\nJos`, "utf8");
    const p = writeFixture(
      dir,
      "bad.csv",
      Buffer.concat([head, Buffer.from([0xe9, 0x0a]), Buffer.from("ok\n")]),
    );
    await expect(forEachLine(p, () => {})).rejects.toThrow(
      /bad\.csv:3: not valid UTF-8 \(byte 0xE9\).*--encoding latin1/,
    );
    // A bad byte on the first chunk boundary's far side, and a truncated sequence at the very end.
    const edge = Buffer.alloc((1 << 20) + 5, 0x61);
    edge[1 << 20] = 0x0a;
    edge[(1 << 20) + 2] = 0xff;
    await expect(forEachLine(writeFixture(dir, "edge.txt", edge), () => {})).rejects.toThrow(
      /edge\.txt:2:.*0xFF/,
    );
    const cut = writeFixture(dir, "cut.txt", Buffer.from([0x61, 0x0a, 0x62, 0xc3]));
    await expect(forEachLine(cut, () => {})).rejects.toThrow(/cut\.txt:2: not valid UTF-8/);
    // The same bytes read as Latin-1 are fine.
    const lines: string[] = [];
    await forEachLine(p, (l) => lines.push(l), "latin1");
    expect(lines[2]).toBe("José");
    expect(firstInvalidUtf8(Buffer.from("José 😀", "utf8"))).toBe(-1);
    expect(firstInvalidUtf8(Buffer.from([0xed, 0xa0, 0x80]))).toBe(0); // UTF-16 surrogate
    expect(firstInvalidUtf8(Buffer.from([0x41, 0xc0, 0x80]))).toBe(1); // overlong
  });
  it("names a folder given where a file is needed (not 'not found')", () => {
    const dir = tempDir();
    expect(() => resolveInputPath(dir)).toThrow(/is a folder; a file is needed/);
  });
  it("joins quoted fields spanning lines and reports the starting line", async () => {
    const dir = tempDir();
    const p = writeFixture(dir, "m.csv", 'id,title\n1,"two\nlines"\n2,ok\n');
    const recs: [string[] | null, number][] = [];
    await forEachRecord(
      p,
      ",",
      (f, n) => {
        recs.push([f, n]);
      },
      "utf8",
      { multiline: true },
    );
    expect(recs).toEqual([
      [["id", "title"], 1],
      [["1", "two\nlines"], 2],
      [["2", "ok"], 4],
    ]);
  });
  it("without multiline, a stray quote spoils only its own line", async () => {
    const dir = tempDir();
    const p = writeFixture(dir, "r.csv", 'a,b\n1,"2\n3,4\n');
    const recs: [string[] | null, number, string | undefined][] = [];
    await forEachRecord(p, ",", (f, n, e) => {
      recs.push([f, n, e]);
    });
    expect(recs).toEqual([
      [["a", "b"], 1, undefined],
      [null, 2, "unterminated quoted field"],
      [["3", "4"], 3, undefined],
    ]);
  });
});
