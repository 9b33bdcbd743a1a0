import { kernels } from "./index.js";

/**
 * Runs `fn` as one hold window of the active kernel backend (Kernels.hold): a training step or a validation
 * pass, whose many kernel calls then find the helper thread awake. The window ends when `fn` returns, throws,
 * or (for a promise) settles, so a failure never leaves the helper polling.
 */
export function whileHeld<T>(fn: () => T): T {
  const k = kernels();
  if (!k.hold) return fn();
  k.hold(true);
  let result: T;
  try {
    result = fn();
  } catch (err) {
    k.hold(false);
    throw err;
  }
  if (result instanceof Promise) {
    return result.finally(() => k.hold?.(false)) as T;
  }
  k.hold(false);
  return result;
}
