/**
 * The one thread setting of the whole tool: a command's --threads, else LLAMAREC_THREADS, else
 * min(2, cores). The tensor kernels (which use at most 2) and llama.cpp both read it here.
 */
import { availableParallelism } from "node:os";
import { InputError } from "./errors.js";

export const THREADS_ENV = "LLAMAREC_THREADS";

export function threadCount(flag?: number, env: NodeJS.ProcessEnv = process.env): number {
  if (flag !== undefined) {
    if (!Number.isInteger(flag) || flag < 1)
      throw new InputError(`threads must be a positive integer, got ${flag}`);
    return flag;
  }
  const raw = env[THREADS_ENV];
  if (raw !== undefined && raw.trim() !== "") {
    const n = Number(raw);
    if (!/^\s*\d+\s*$/.test(raw) || n < 1)
      throw new InputError(`${THREADS_ENV} must be a positive integer, got "${raw}"`);
    return n;
  }
  return Math.min(2, availableParallelism());
}
