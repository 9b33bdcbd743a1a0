import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from "node:worker_threads";
import type { WasmMemory, WasmModule } from "./wasm-api.js";

// One helper thread running the same wasm module over the same shared memory. Every call posted to it takes
// its work from a shared counter in wasm memory (see assembly/kernels.ts), so the helper only *helps*: the
// calling thread runs the same call and drains whatever is left. If the helper has not woken up by the time
// the caller is done (a busy machine, or a tiny call), the caller withdraws the post and never waits for it.
// Synchronisation is Atomics.wait/notify on a small control block; kernels are synchronous, so no event-loop
// round trip is involved.

// Control block (Int32 slots).
const STATE = 0;
const FAILED = 1; // 1 if the call threw (message sent over `errors`)
const OP = 2; // index into the export-name list; −1 = exit
const NARGS = 3;
const READY = 4; // 1 once the helper instantiated the module
const HOLD = 5; // 1 while the caller holds the helper awake (a training step, a validation pass); 2: held, but
// the helper was preempted while polling (a busy machine): no more polling in this window
const SPINNING = 6; // 1 while the helper polls for the next call (written by the helper)
const WAKE = 7; // bumped by every post, hold(true) and exit: the helper sleeps on it (no lost wake-up)
const PREEMPTIONS = 8; // times the helper stopped polling because it had been preempted
const WINDOW = 9; // bumped by every hold(true): a new hold window
// A gap this long (ms) between two looks at the clock while polling means the helper was preempted.
const PREEMPTED_MS = 0.5;
// A hold window stops polling once the helper lost this share of it (and this many ms) to preemption.
const LOST_SHARE = 0.2;
const LOST_MIN_MS = 2;
const SPIN_TIME = 48; // byte offset of a Float64: ms the helper spent polling (written by the helper only)
const ARGS_OFFSET = 64; // Float64 arguments start here
const MAX_ARGS = 32;
// How long finish() polls for the helper's last piece before it sleeps.
const FINISH_SPIN_MS = 0.2;
// STATE values
const IDLE = 0;
const POSTED = 1;
const RUNNING = 2;

// Evaluated as a CommonJS script in the worker: there is no compiled .js file to point at under vitest (src/)
// or from dist/, so the worker body travels as a string.
const WORKER_SOURCE = `
const { workerData } = require("node:worker_threads");
const { module, memory, control, names, errors, spinMs, holdIdleMs } = workerData;
const instance = new WebAssembly.Instance(module, { env: { memory } });
// native kernels (src/tensor/kernels/native.ts): the same functions over the same memory replace the wasm ones.
const native = workerData.nativePath ? require(workerData.nativePath).bind(new Uint8Array(memory.buffer)) : {};
const fns = names.map((n) => native[n] ?? instance.exports[n]);
const ctl = new Int32Array(control, 0, 16);
const args = new Float64Array(control, ${ARGS_OFFSET}, ${MAX_ARGS});
const spent = new Float64Array(control, ${SPIN_TIME}, 1);
Atomics.store(ctl, ${READY}, 1);
Atomics.notify(ctl, ${READY});
let window = 0; // the hold window seen last
let windowStart = 0; // when this thread first saw it
let lost = 0; // ms lost to preemption while polling in it
for (;;) {
  const wake = Atomics.load(ctl, ${WAKE});
  let state = Atomics.load(ctl, ${STATE});
  if (state !== ${POSTED}) {
    // Stay awake after a call (spinMs), and for as long as the caller holds this thread (a training step or a
    // validation pass: many split calls with serial work between them), so that the next split call starts on
    // both threads at once instead of waiting for the kernel to wake this thread on a halted vCPU. A hold
    // polls at most holdIdleMs after the last call or the hold's start, so a hold left on costs little.
    // Polling stops when this thread is preempted (a gap of over ${PREEMPTED_MS} ms between two looks at the
    // clock), and for the rest of the hold window once the time it lost that way exceeds ${LOST_SHARE} of the
    // window (and ${LOST_MIN_MS} ms): the cores are busy with other work, and polling would take CPU time from
    // the calling thread (with the kernel's autogroup scheduling both threads of this process share one slice
    // of the CPUs: measured 2 threads ×0.65 of 1 with polling at load 6). An occasional preemption (another
    // job's time slice) does not end the window's polling.
    const t0 = performance.now();
    let now = t0;
    if (Atomics.load(ctl, ${WINDOW}) !== window) {
      window = Atomics.load(ctl, ${WINDOW});
      windowStart = t0;
      lost = 0;
    }
    Atomics.store(ctl, ${SPINNING}, 1);
    for (;;) {
      if (now - t0 >= (Atomics.load(ctl, ${HOLD}) === 1 ? holdIdleMs : spinMs)) break;
      for (let i = 0; i < 64 && state !== ${POSTED}; i++) state = Atomics.load(ctl, ${STATE});
      if (state === ${POSTED}) break;
      const before = now;
      now = performance.now();
      if (now - before > ${PREEMPTED_MS}) {
        Atomics.add(ctl, ${PREEMPTIONS}, 1);
        lost += now - before;
        if (lost > ${LOST_MIN_MS} && lost > ${LOST_SHARE} * (now - windowStart)) {
          Atomics.compareExchange(ctl, ${HOLD}, 1, 2);
        }
        break;
      }
    }
    Atomics.store(ctl, ${SPINNING}, 0);
    spent[0] += performance.now() - t0;
    if (state !== ${POSTED}) {
      // Woken by a post, by hold(true), or by exit (each bumps WAKE, so one that came after it was read above
      // returns at once).
      Atomics.wait(ctl, ${WAKE}, wake);
      continue;
    }
  }
  // Claim the call; fails if the caller already withdrew it.
  if (Atomics.compareExchange(ctl, ${STATE}, ${POSTED}, ${RUNNING}) !== ${POSTED}) continue;
  const op = ctl[${OP}];
  if (op < 0) break;
  try {
    fns[op](...args.subarray(0, ctl[${NARGS}]));
  } catch (err) {
    ctl[${FAILED}] = 1;
    errors.postMessage(String(err && err.stack ? err.stack : err));
  }
  Atomics.store(ctl, ${STATE}, ${IDLE});
  Atomics.notify(ctl, ${STATE});
}
`;

export class KernelThread {
  private readonly worker: Worker;
  private readonly ctl: Int32Array;
  private readonly args: Float64Array;
  private readonly spent: Float64Array;
  private readonly names: readonly string[];
  private readonly errors: MessagePort;
  private pending = false;
  private dead = false;

  /** Starts the helper and waits (synchronously, up to `startTimeoutMs`) until it is ready; throws if not. */
  constructor(
    module: WasmModule,
    memory: WasmMemory,
    names: readonly string[],
    startTimeoutMs = 20_000,
    spinMs = 0,
    holdIdleMs = 50,
    /** The native kernel addon to overlay on the wasm exports (src/tensor/kernels/native.ts), if any. */
    nativePath?: string,
  ) {
    this.names = names;
    const control = new SharedArrayBuffer(ARGS_OFFSET + MAX_ARGS * 8);
    this.ctl = new Int32Array(control, 0, 16);
    this.args = new Float64Array(control, ARGS_OFFSET, MAX_ARGS);
    this.spent = new Float64Array(control, SPIN_TIME, 1);
    const { port1, port2 } = new MessageChannel();
    this.errors = port1;
    port1.unref();
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { module, memory, control, names, errors: port2, spinMs, holdIdleMs, nativePath },
      transferList: [port2],
    });
    // The helper only ever blocks in Atomics.wait; it must never keep the process alive.
    this.worker.unref();
    this.worker.on("error", () => {
      this.dead = true;
    });
    const deadline = Date.now() + startTimeoutMs;
    while (Atomics.load(this.ctl, READY) !== 1) {
      const left = deadline - Date.now();
      if (left <= 0) {
        void this.worker.terminate();
        throw new Error(`kernel worker thread did not start within ${startTimeoutMs} ms`);
      }
      Atomics.wait(this.ctl, READY, 0, Math.min(left, 100));
    }
  }

  /**
   * Offers `name(...args)` to the helper. The call must take its work from a shared counter (so skipping it
   * is harmless), and the caller must run the same work itself before calling finish().
   */
  post(name: string, args: readonly number[]): void {
    if (this.pending) throw new Error("kernel worker: post() while a call is still pending");
    if (this.dead) throw new Error("kernel worker thread has died");
    const op = this.names.indexOf(name);
    if (op < 0) throw new Error(`kernel worker: unknown export ${name}`);
    if (args.length > MAX_ARGS) throw new Error(`kernel worker: ${args.length} arguments > ${MAX_ARGS}`);
    this.args.set(args);
    this.ctl[OP] = op;
    this.ctl[NARGS] = args.length;
    this.ctl[FAILED] = 0;
    this.pending = true;
    Atomics.store(this.ctl, STATE, POSTED);
    this.wake();
  }

  /**
   * Withdraws the post if the helper has not claimed it yet (unless `waitForHelper`, used by tests to make the
   * helper do the whole call), else waits until the helper finished; rethrows its error. Returns whether the
   * helper took part.
   */
  finish(waitForHelper = false): boolean {
    if (!this.pending) return false;
    this.pending = false;
    if (waitForHelper) {
      for (let s = Atomics.load(this.ctl, STATE); s !== IDLE; s = Atomics.load(this.ctl, STATE)) {
        Atomics.wait(this.ctl, STATE, s);
      }
    } else if (Atomics.compareExchange(this.ctl, STATE, POSTED, IDLE) === POSTED) {
      return false;
    }
    // Errors inside the call are caught in the helper, so IDLE always arrives unless the thread is killed.
    // The helper's last piece is usually short: poll a little (sleeping and being woken costs tens of µs on a
    // halted vCPU), then sleep.
    const until = performance.now() + FINISH_SPIN_MS;
    while (Atomics.load(this.ctl, STATE) === RUNNING && performance.now() < until) {
      /* poll */
    }
    while (Atomics.load(this.ctl, STATE) === RUNNING) Atomics.wait(this.ctl, STATE, RUNNING);
    if (this.ctl[FAILED] === 1) {
      const msg = receiveMessageOnPort(this.errors)?.message;
      throw new Error(`kernel worker call failed: ${String(msg ?? "unknown error")}`);
    }
    return true;
  }

  /**
   * on: the helper polls for calls until hold(false) (at most `holdIdleMs` after its last call) instead of
   * sleeping between them; a sleeping helper is woken now, so the first call of the window finds it awake.
   */
  hold(on: boolean): void {
    if (this.dead) return;
    if (on) Atomics.add(this.ctl, WINDOW, 1);
    Atomics.store(this.ctl, HOLD, on ? 1 : 0);
    if (on) this.wake();
  }

  private wake(): void {
    Atomics.add(this.ctl, WAKE, 1);
    Atomics.notify(this.ctl, WAKE);
  }

  /** True while the helper polls for a call (after a call, or in a hold) rather than sleeping or working. */
  spinning(): boolean {
    return Atomics.load(this.ctl, SPINNING) === 1;
  }

  /** True when the helper was preempted while polling in the current hold window (a busy machine). */
  contended(): boolean {
    return Atomics.load(this.ctl, HOLD) === 2;
  }

  /** How many times the helper stopped polling because it had been preempted (a busy machine). */
  preemptions(): number {
    return Atomics.load(this.ctl, PREEMPTIONS);
  }

  /** Milliseconds the helper has spent polling for calls so far. */
  spinMs(): number {
    return this.spent[0]!;
  }

  dispose(): void {
    if (this.dead) return;
    this.finish();
    Atomics.store(this.ctl, HOLD, 0);
    this.dead = true;
    this.ctl[OP] = -1;
    Atomics.store(this.ctl, STATE, POSTED);
    this.wake();
    this.errors.close();
  }
}
