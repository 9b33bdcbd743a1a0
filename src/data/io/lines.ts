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
  if (existsSync(path)) {
    if (statSync(path).isFile()) return path;
    if (statSync(path).isDirectory()) throw new InputError(`${path} is a folder; a file is needed here`);
  }
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

/** Byte offset of the first invalid UTF-8 sequence in `buf` (-1 if none; a sequence cut at the end is fine). */
export function firstInvalidUtf8(buf: Uint8Array): number {
  let i = 0;
  const n = buf.length;
  while (i < n) {
    const b = buf[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    let len: number;
    let min: number;
    if (b >= 0xc2 && b <= 0xdf) [len, min] = [2, 0x80];
    else if (b >= 0xe0 && b <= 0xef) [len, min] = [3, 0x800];
    else if (b >= 0xf0 && b <= 0xf4) [len, min] = [4, 0x10000];
    else return i;
    let cp = b & (0xff >> (len + 1));
    for (let k = 1; k < len; k++) {
      if (i + k >= n) return -1;
      const c = buf[i + k]!;
      if ((c & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += len;
  }
  return -1;
}

/** Length of an unfinished multi-byte sequence at the end of `buf` (0 to 3). */
function incompleteTail(buf: Uint8Array): number {
  for (let back = 1; back <= Math.min(3, buf.length); back++) {
    const b = buf[buf.length - back]!;
    if ((b & 0xc0) === 0x80) continue; // continuation byte: look further back
    const len = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return len > back ? back : 0;
  }
  return 0;
}

/** A decoder that throws an InputError naming the file and line at the first invalid UTF-8 byte. */
function strictUtf8(path: string, linesBefore: () => number) {
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  let tail: Uint8Array = new Uint8Array(0);
  const fail = (bytes: Uint8Array): never => {
    const at = Math.max(0, firstInvalidUtf8(bytes));
    let line = linesBefore() + 1;
    for (let i = tail.length; i < at; i++) if (bytes[i] === 0x0a) line++;
    const byte = bytes[at] ?? bytes[bytes.length - 1] ?? 0;
    throw new InputError(
      `${path}:${line}: not valid UTF-8 (byte 0x${byte.toString(16).toUpperCase().padStart(2, "0")}); if the file is Latin-1, read it with --encoding latin1 (or convert it to UTF-8)`,
    );
  };
  return {
    write(chunk: Buffer): string {
      // Keep an incomplete sequence's bytes so an error can be located in the joined buffer.
      const bytes = tail.length > 0 ? Buffer.concat([tail, chunk]) : chunk;
      try {
        const text = decoder.decode(chunk, { stream: true });
        tail = bytes.subarray(bytes.length - incompleteTail(bytes));
        return text;
      } catch {
        return fail(bytes);
      }
    },
    end(): string {
      try {
        return decoder.decode();
      } catch {
        return fail(tail);
      }
    },
  };
}

/**
 * Streams a text file line by line (gzip transparent), calling `onLine(line, lineNo)` with 1-based line
 * numbers. Handles \n and \r\n endings and a leading UTF-8 BOM. `onLine` may return false to stop early.
 * UTF-8 input must be valid UTF-8: an invalid byte is an InputError naming the file and line (silently
 * decoding it to U+FFFD would mangle titles and merge distinct ids).
 */
export async function forEachLine(
  path: string,
  onLine: (line: string, lineNo: number) => unknown,
  encoding: TextEncoding = "utf8",
): Promise<void> {
  const { stream, close } = openByteStream(path);
  let lineNo = 0;
  const decoder = encoding === "utf8" ? strictUtf8(path, () => lineNo) : new StringDecoder(encoding);
  let carry = "";
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
