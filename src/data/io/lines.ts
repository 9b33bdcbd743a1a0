import { closeSync, createReadStream, existsSync, openSync, readSync, statSync } from "node:fs";
import { StringDecoder } from "node:string_decoder";
import { createGunzip } from "node:zlib";
import { InputError } from "../../util/errors.js";

export type TextEncoding = "utf8" | "latin1";

/**
 * Resolves an input path: the path itself if it exists, else `path + ".gz"` if that exists.
 * Throws an InputError naming both when neither exists.
 */
export function resolveInputPath(path: string): string {
  if (existsSync(path) && statSync(path).isFile()) return path;
  if (!path.endsWith(".gz") && existsSync(`${path}.gz`)) return `${path}.gz`;
  throw new InputError(`input file not found: ${path}${path.endsWith(".gz") ? "" : ` (nor ${path}.gz)`}`);
}

/** True when the file starts with the gzip magic bytes (1f 8b), whatever its name. */
export function isGzipFile(path: string): boolean {
  const fd = openSync(path, "r");
  try {
    const buf = Buffer.alloc(2);
    const n = readSync(fd, buf, 0, 2, 0);
    return n === 2 && buf[0] === 0x1f && buf[1] === 0x8b;
  } finally {
    closeSync(fd);
  }
}

/** Opens a file as a byte stream, gunzipping it transparently when it is gzip-compressed. */
export function openByteStream(path: string): { stream: AsyncIterable<Buffer>; close: () => void } {
  const raw = createReadStream(path, { highWaterMark: 1 << 20 });
  if (!isGzipFile(path)) return { stream: raw, close: () => raw.destroy() };
  const gunzip = createGunzip();
  raw.on("error", (err) => gunzip.destroy(err));
  raw.pipe(gunzip);
  return {
    stream: gunzip,
    close: () => {
      raw.destroy();
      gunzip.destroy();
    },
  };
}

/**
 * Streams a text file line by line (gzip transparent), calling `onLine(line, lineNo)` with 1-based line
 * numbers. Handles \n and \r\n endings and a leading UTF-8 BOM. `onLine` may return false to stop early.
 */
export async function forEachLine(
  path: string,
  onLine: (line: string, lineNo: number) => unknown,
  encoding: TextEncoding = "utf8",
): Promise<void> {
  const { stream, close } = openByteStream(path);
  const decoder = new StringDecoder(encoding);
  let carry = "";
  let lineNo = 0;
  let stopped = false;
  const emit = (line: string): void => {
    lineNo++;
    if (line.endsWith("\r")) line = line.slice(0, -1);
    if (lineNo === 1 && line.charCodeAt(0) === 0xfeff) line = line.slice(1);
    if (onLine(line, lineNo) === false) stopped = true;
  };
  try {
    for await (const chunk of stream) {
      const text = carry + decoder.write(chunk);
      let start = 0;
      let nl = text.indexOf("\n", start);
      while (nl !== -1) {
        emit(text.slice(start, nl));
        if (stopped) return;
        start = nl + 1;
        nl = text.indexOf("\n", start);
      }
      carry = text.slice(start);
    }
    const rest = carry + decoder.end();
    if (rest.length > 0) emit(rest);
  } catch (err) {
    if (err instanceof InputError) throw err;
    const e = err as NodeJS.ErrnoException;
    if (e && (e.code === "Z_DATA_ERROR" || e.code === "Z_BUF_ERROR" || e.code === "ENOENT")) {
      throw new InputError(`cannot read ${path}: ${e.message}`);
    }
    throw err;
  } finally {
    close();
  }
}

/** Reads the first non-empty line of a file (gzip transparent), or undefined for an empty file. */
export async function firstLine(path: string, encoding: TextEncoding = "utf8"): Promise<string | undefined> {
  let first: string | undefined;
  await forEachLine(
    path,
    (line) => {
      if (line.trim() === "") return true;
      first = line;
      return false;
    },
    encoding,
  );
  return first;
}
