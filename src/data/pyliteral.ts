/**
 * A parser for Python literal syntax (what `repr()` of dicts, lists, strings and numbers produces), as found
 * in the Amazon 2014 metadata files (`meta_<Category>.json.gz`, one dict literal per line). Never evaluates
 * code: only literals are accepted.
 *
 * Supported: dicts, lists, tuples, sets; strings in single, double or triple quotes with the u/b/r prefixes
 * and the escapes \\ \' \" \n \r \t \b \f \v \a \0-\777 (octal) \xhh \uhhhh \Uhhhhhhhh and line
 * continuation; adjacent string literals ('a' 'b'); ints, floats (with exponent, inf/nan are not literals);
 * True/False/None. JSON's true/false/null are accepted as well, so JSON lines parse too.
 * Dict keys are converted to strings. Unknown escapes keep their backslash, as in Python.
 */
export type PyValue = string | number | boolean | null | PyValue[] | { [key: string]: PyValue };

export class PyLiteralError extends Error {
  override name = "PyLiteralError";
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(`${message} at position ${position}`);
  }
}

export function parsePythonLiteral(text: string): PyValue {
  const p = new Parser(text);
  p.skipWs();
  const v = p.value();
  p.skipWs();
  if (p.pos < text.length) p.fail("unexpected trailing text");
  return v;
}

const IDENT = /[A-Za-z_]/;
const HEX = /^[0-9a-fA-F]+$/;

class Parser {
  pos = 0;
  constructor(readonly s: string) {}

  fail(msg: string): never {
    throw new PyLiteralError(msg, this.pos);
  }

  skipWs(): void {
    const s = this.s;
    while (this.pos < s.length) {
      const c = s.charCodeAt(this.pos);
      if (c === 32 || c === 9 || c === 10 || c === 13) this.pos++;
      else if (c === 92 && (s[this.pos + 1] === "\n" || s[this.pos + 1] === "\r")) this.pos += 2;
      else break;
    }
  }

  value(): PyValue {
    const s = this.s;
    const c = s[this.pos];
    if (c === undefined) this.fail("unexpected end of input");
    if (c === "{") return this.dictOrSet();
    if (c === "[") return this.sequence("[", "]");
    if (c === "(") return this.tuple();
    if (c === "'" || c === '"') return this.strings();
    if (c === "-" || c === "+" || c === "." || (c >= "0" && c <= "9")) return this.number();
    if (IDENT.test(c)) {
      // string prefix (u, b, r, and combinations) or a keyword
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(this.pos, this.pos + 16))!;
      const word = m[0];
      const next = s[this.pos + word.length];
      if ((next === "'" || next === '"') && /^(?:[uUbBrR]|[bB][rR]|[rR][bB])$/.test(word))
        return this.strings();
      this.pos += word.length;
      switch (word) {
        case "True":
        case "true":
          return true;
        case "False":
        case "false":
          return false;
        case "None":
        case "null":
          return null;
        default:
          this.pos -= word.length;
          this.fail(`unexpected name '${word}' (only literals are allowed)`);
      }
    }
    return this.fail(`unexpected character '${c}'`);
  }

  private dictOrSet(): PyValue {
    this.pos++; // {
    this.skipWs();
    if (this.s[this.pos] === "}") {
      this.pos++;
      return {};
    }
    const first = this.value();
    this.skipWs();
    if (this.s[this.pos] !== ":") {
      // a set literal: return its elements as a list
      const items: PyValue[] = [first];
      return this.rest(items, "}");
    }
    const obj: { [key: string]: PyValue } = {};
    let key: PyValue = first;
    for (;;) {
      this.skipWs();
      if (this.s[this.pos] !== ":") this.fail("expected ':' in dict");
      this.pos++;
      this.skipWs();
      const v = this.value();
      Object.defineProperty(obj, keyString(key), {
        value: v,
        enumerable: true,
        writable: true,
        configurable: true,
      });
      this.skipWs();
      const c = this.s[this.pos];
      if (c === ",") {
        this.pos++;
        this.skipWs();
        if (this.s[this.pos] === "}") {
          this.pos++;
          return obj;
        }
        key = this.value();
        continue;
      }
      if (c === "}") {
        this.pos++;
        return obj;
      }
      this.fail("expected ',' or '}' in dict");
    }
  }

  private rest(items: PyValue[], close: string): PyValue[] {
    for (;;) {
      this.skipWs();
      const c = this.s[this.pos];
      if (c === close) {
        this.pos++;
        return items;
      }
      if (c !== ",") this.fail(`expected ',' or '${close}'`);
      this.pos++;
      this.skipWs();
      if (this.s[this.pos] === close) {
        this.pos++;
        return items;
      }
      items.push(this.value());
    }
  }

  private sequence(open: string, close: string): PyValue[] {
    this.pos++; // open
    this.skipWs();
    if (this.s[this.pos] === close) {
      this.pos++;
      return [];
    }
    void open;
    return this.rest([this.value()], close);
  }

  private tuple(): PyValue {
    this.pos++;
    this.skipWs();
    if (this.s[this.pos] === ")") {
      this.pos++;
      return [];
    }
    const first = this.value();
    this.skipWs();
    if (this.s[this.pos] === ")") {
      // a parenthesised expression, not a tuple
      this.pos++;
      return first;
    }
    return this.rest([first], ")");
  }

  private number(): number {
    const head = this.s.slice(this.pos, this.pos + 80);
    const radixMatch = /^([+-]?)0([xXoObB])([0-9a-fA-F_]+)[lL]?/.exec(head);
    if (radixMatch) {
      this.pos += radixMatch[0].length;
      const r = radixMatch[2]!.toLowerCase();
      const radix = r === "x" ? 16 : r === "o" ? 8 : 2;
      const digits = radixMatch[3]!.replaceAll("_", "");
      const valid = radix === 16 ? /^[0-9a-fA-F]+$/ : radix === 8 ? /^[0-7]+$/ : /^[01]+$/;
      if (!valid.test(digits)) this.fail("malformed number");
      const v = Number.parseInt(digits, radix);
      return radixMatch[1] === "-" ? -v : v;
    }
    const m = /^[+-]?(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?[lLjJ]?/.exec(head);
    if (!m) this.fail("malformed number");
    let t = m[0];
    this.pos += t.length;
    if (/[jJ]$/.test(t)) this.fail("complex numbers are not supported");
    t = t.replace(/[lL]$/, "").replaceAll("_", "");
    const v = Number(t);
    if (Number.isNaN(v)) this.fail("malformed number");
    return v;
  }

  /** One or more adjacent string literals, concatenated. */
  private strings(): string {
    let out = this.string();
    for (;;) {
      const save = this.pos;
      this.skipWs();
      const c = this.s[this.pos];
      if (
        c === "'" ||
        c === '"' ||
        (c !== undefined &&
          /[uUbBrR]/.test(c) &&
          /^[uUbBrR]{1,2}['"]/.test(this.s.slice(this.pos, this.pos + 3)))
      ) {
        out += this.string();
      } else {
        this.pos = save;
        return out;
      }
    }
  }

  private string(): string {
    const s = this.s;
    let raw = false;
    while (/[uUbBrR]/.test(s[this.pos] ?? "")) {
      if (s[this.pos] === "r" || s[this.pos] === "R") raw = true;
      this.pos++;
    }
    const q = s[this.pos];
    if (q !== "'" && q !== '"') this.fail("expected a string");
    const triple = s.startsWith(q.repeat(3), this.pos);
    const delim = triple ? q.repeat(3) : q;
    this.pos += delim.length;
    let out = "";
    let chunkStart = this.pos;
    for (;;) {
      if (this.pos >= s.length) this.fail("unterminated string");
      const c = s[this.pos]!;
      if (c === q && (!triple || s.startsWith(delim, this.pos))) {
        out += s.slice(chunkStart, this.pos);
        this.pos += delim.length;
        return out;
      }
      if (!triple && (c === "\n" || c === "\r")) this.fail("line break in string");
      if (c !== "\\") {
        this.pos++;
        continue;
      }
      out += s.slice(chunkStart, this.pos);
      const e = s[this.pos + 1];
      if (e === undefined) this.fail("unterminated string");
      if (raw) {
        // raw strings keep the backslash; an escaped quote does not end the string
        out += `\\${e}`;
        this.pos += 2;
        chunkStart = this.pos;
        continue;
      }
      this.pos += 2;
      switch (e) {
        case "\n":
          break;
        case "\r":
          if (s[this.pos] === "\n") this.pos++;
          break;
        case "\\":
        case "'":
        case '"':
          out += e;
          break;
        case "n":
          out += "\n";
          break;
        case "r":
          out += "\r";
          break;
        case "t":
          out += "\t";
          break;
        case "b":
          out += "\b";
          break;
        case "f":
          out += "\f";
          break;
        case "v":
          out += "\v";
          break;
        case "a":
          out += "\x07";
          break;
        case "x":
          out += this.hexEscape(2);
          break;
        case "u":
          out += this.hexEscape(4);
          break;
        case "U":
          out += this.hexEscape(8);
          break;
        default:
          if (e >= "0" && e <= "7") {
            let digits = e;
            while (digits.length < 3 && /[0-7]/.test(s[this.pos] ?? "")) digits += s[this.pos++];
            out += String.fromCodePoint(Number.parseInt(digits, 8));
          } else {
            out += `\\${e}`; // Python keeps unknown escapes verbatim
          }
      }
      chunkStart = this.pos;
    }
  }

  private hexEscape(len: number): string {
    const digits = this.s.slice(this.pos, this.pos + len);
    if (digits.length !== len || !HEX.test(digits))
      this.fail(`truncated \\${len === 2 ? "x" : len === 4 ? "u" : "U"} escape`);
    const cp = Number.parseInt(digits, 16);
    if (cp > 0x10ffff) this.fail("escape out of range");
    this.pos += len;
    return String.fromCodePoint(cp);
  }
}

function keyString(key: PyValue): string {
  if (typeof key === "string") return key;
  if (key === null) return "None";
  if (typeof key === "boolean") return key ? "True" : "False";
  if (typeof key === "number") return String(key);
  return JSON.stringify(key);
}
