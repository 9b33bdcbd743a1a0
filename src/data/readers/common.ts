import { basename } from "node:path";
import { InputError } from "../../util/errors.js";

/** Strips a trailing ".gz" and returns the lower-cased base name. */
export function plainName(path: string): string {
  return basename(path).toLowerCase().replace(/\.gz$/, "");
}

/**
 * Finds the index of each wanted column in a header, or throws an InputError listing the columns found
 * and the ones expected.
 */
export function locateColumns<K extends string>(
  file: string,
  header: readonly string[],
  wanted: Record<K, string | undefined>,
  required: readonly NoInfer<K>[],
): Record<K, number> {
  const clean = header.map((h) => h.trim());
  const out = {} as Record<K, number>;
  const missing: string[] = [];
  for (const key of Object.keys(wanted) as K[]) {
    const name = wanted[key];
    const idx = name === undefined ? -1 : clean.indexOf(name);
    if (idx === -1 && required.includes(key)) missing.push(name ?? key);
    out[key] = idx;
  }
  if (missing.length > 0) {
    const expected = required.map((k) => wanted[k] ?? k);
    throw new InputError(
      `${file}: missing column${missing.length > 1 ? "s" : ""} ${missing.map((m) => `"${m}"`).join(", ")}; ` +
        `found columns: ${clean.map((c) => `"${c}"`).join(", ") || "(none)"}; expected: ${expected.map((e) => `"${e}"`).join(", ")}`,
    );
  }
  return out;
}

/**
 * Parses a timestamp: a finite number is taken as is; otherwise an ISO-8601 / RFC 2822 date string is
 * converted to seconds since the epoch. Undefined when neither works.
 */
export function parseTimestamp(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const t = s.trim();
  if (t === "") return undefined;
  const v = Number(t);
  if (Number.isFinite(v)) return v;
  if (!/\d/.test(t)) return undefined;
  const ms = Date.parse(t);
  return Number.isFinite(ms) ? ms / 1000 : undefined;
}
