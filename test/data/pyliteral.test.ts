import { describe, expect, it } from "vitest";
import { PyLiteralError, parsePythonLiteral } from "../../src/data/pyliteral.js";

describe("parsePythonLiteral", () => {
  it("parses an Amazon 2014 metadata line", () => {
    const line =
      "{'asin': '0205616461', 'title': 'Bath & Body Works Ile D\\'Or', 'price': 12.5, 'salesRank': {'Beauty': 402875}, " +
      "'categories': [['Beauty', 'Skin Care', 'Body']], 'related': {'also_bought': ['B00', \"B01\"]}, 'imUrl': None}";
    expect(parsePythonLiteral(line)).toEqual({
      asin: "0205616461",
      title: "Bath & Body Works Ile D'Or",
      price: 12.5,
      salesRank: { Beauty: 402875 },
      categories: [["Beauty", "Skin Care", "Body"]],
      related: { also_bought: ["B00", "B01"] },
      imUrl: null,
    });
  });
  it("handles string escapes", () => {
    expect(parsePythonLiteral("'a\\nb\\tc\\\\d'")).toBe("a\nb\tc\\d");
    expect(parsePythonLiteral("'caf\\xe9'")).toBe("café");
    expect(parsePythonLiteral("u'\\u00e9t\\u00e9'")).toBe("été");
    expect(parsePythonLiteral("'\\U0001F600'")).toBe("😀");
    expect(parsePythonLiteral('"it\'s \\"quoted\\""')).toBe('it\'s "quoted"');
    expect(parsePythonLiteral("'\\101\\0'")).toBe("A\0");
    expect(parsePythonLiteral("'keep \\d'")).toBe("keep \\d");
    expect(parsePythonLiteral("r'raw \\n'")).toBe("raw \\n");
    expect(parsePythonLiteral("'ab' \"cd\"")).toBe("abcd");
    expect(parsePythonLiteral("'''tri'ple'''")).toBe("tri'ple");
  });
  it("parses keywords, numbers, tuples, nesting and trailing commas", () => {
    expect(parsePythonLiteral("[True, False, None, true, null]")).toEqual([true, false, null, true, null]);
    expect(parsePythonLiteral("[-1, +2, 3.5, 1e3, -2.5E-2, .5, 10L, 0x1F, 1_000]")).toEqual([
      -1, 2, 3.5, 1000, -0.025, 0.5, 10, 31, 1000,
    ]);
    expect(parsePythonLiteral("(1, 'a',)")).toEqual([1, "a"]);
    expect(parsePythonLiteral("(5)")).toBe(5);
    expect(parsePythonLiteral("{'a': {'b': [1, (2, 3)]}, 1: 'x',}")).toEqual({
      a: { b: [1, [2, 3]] },
      "1": "x",
    });
    expect(parsePythonLiteral("{}")).toEqual({});
    expect(parsePythonLiteral(" [ ] ")).toEqual([]);
  });
  it("never evaluates code", () => {
    expect(() => parsePythonLiteral("__import__('os').system('true')")).toThrow(PyLiteralError);
    expect(() => parsePythonLiteral("{'a': len('x')}")).toThrow(/only literals/);
  });
  it("rejects malformed input with a position", () => {
    expect(() => parsePythonLiteral("{'a': 1")).toThrow(PyLiteralError);
    expect(() => parsePythonLiteral("'unterminated")).toThrow(/unterminated/);
    expect(() => parsePythonLiteral("{'a': 1, 'b' 2}")).toThrow(/expected ':'/);
    expect(() => parsePythonLiteral("[1] x")).toThrow(/trailing/);
    expect(() => parsePythonLiteral("'\\x4'")).toThrow(/escape/);
  });
  it("parses JSON lines too", () => {
    expect(parsePythonLiteral('{"asin": "B1", "title": "T", "x": [1.5, true, null]}')).toEqual({
      asin: "B1",
      title: "T",
      x: [1.5, true, null],
    });
  });
});
