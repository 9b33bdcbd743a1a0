import { forEachLine, type TextEncoding } from "./lines.js";

/** Result of parsing one CSV line: the fields, or `open` when a quoted field continues on the next line. */
export interface CsvParse {
  fields: string[];
  /** True when the line ended inside a quoted field (the record continues on the next line). */
  open: boolean;
  /** Set when the quoting is malformed (e.g. text after a closing quote). */
  error?: string;
}

/**
 * Parses one delimited line (RFC 4180 quoting: fields may be wrapped in double quotes, which may contain
 * the delimiter and doubled quotes ""). Fast path for lines without quotes.
 */
export function parseDelimitedLine(line: string, delimiter = ","): CsvParse {
  if (line.indexOf('"') === -1) return { fields: line.split(delimiter), open: false };
  const fields: string[] = [];
  const n = line.length;
  let i = 0;
  let field = "";
  for (;;) {
    if (i < n && line[i] === '"') {
      // quoted field
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q === -1) {
          field += line.slice(i);
          fields.push(field);
          return { fields, open: true };
        }
        field += line.slice(i, q);
        if (line[q + 1] === '"') {
          field += '"';
          i = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      if (i < n && !line.startsWith(delimiter, i)) {
        return { fields, open: false, error: `unexpected text after closing quote at column ${i + 1}` };
      }
    } else {
      const d = line.indexOf(delimiter, i);
      const end = d === -1 ? n : d;
      field += line.slice(i, end);
      i = end;
    }
    fields.push(field);
    field = "";
    if (i >= n) return { fields, open: false };
    i += delimiter.length; // skip the delimiter
    if (i >= n) {
      fields.push("");
      return { fields, open: false };
    }
  }
}

/**
 * Streams the records of a delimited file. With `multiline`, a quoted field may span lines (at most
 * `maxLines`, default 50, so that one stray quote cannot swallow the file); the record is reported with the
 * line number it starts on. Without it, an unterminated quote is an error for that line only. `onRecord` receives either fields or a parse error message.
 */
export async function forEachRecord(
  path: string,
  delimiter: string,
  onRecord: (fields: string[] | null, lineNo: number, error?: string) => unknown,
  encoding: TextEncoding = "utf8",
  options: { multiline?: boolean; maxLines?: number } = {},
): Promise<void> {
  const multiline = options.multiline ?? false;
  const MAX_CONTINUATION = options.maxLines ?? 50;
  let pending: string | null = null;
  let pendingLine = 0;
  let pendingCount = 0;
  await forEachLine(
    path,
    (line, lineNo) => {
      let text = line;
      let start = lineNo;
      if (pending !== null) {
        text = `${pending}\n${line}`;
        start = pendingLine;
      }
      const r = parseDelimitedLine(text, delimiter);
      if (r.open && !r.error) {
        if (!multiline) return onRecord(null, start, "unterminated quoted field");
        pendingCount++;
        if (pendingCount > MAX_CONTINUATION) {
          pending = null;
          pendingCount = 0;
          return onRecord(null, start, "unterminated quoted field");
        }
        pending = text;
        pendingLine = start;
        return true;
      }
      pending = null;
      pendingCount = 0;
      if (r.error) return onRecord(null, start, r.error);
      return onRecord(r.fields, start);
    },
    encoding,
  );
  if (pending !== null) onRecord(null, pendingLine, "unterminated quoted field at end of file");
}

/** Quotes a CSV field when it contains the delimiter, a quote, or a line break. */
export function csvField(value: string, delimiter = ","): string {
  if (value.includes(delimiter) || value.includes('"') || value.includes("\n") || value.includes("\r")) {
    return `"${value.replaceAll('"', '""')}"`;
  }
  return value;
}
