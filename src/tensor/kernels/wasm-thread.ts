import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from "node:worker_threads";
import type { WasmMemory, WasmModule } from "./wasm-api.js";

// One helper thread running the same wasm module over the same shared memory. The main thread posts a call
// (export name + numeric arguments) into a small control block, does its own share of the work, then blocks in
// Atomics.wait until the helper reports done. Kernels are synchronous, so no event-loop round trip is involved.

// Control block layout (Int32 slots).
const SEQ = 0; // bumped by the main thread for each posted call
const DONE = 1; // set to SEQ by the helper when the call finished
const FAILED = 2; // 1 if the call threw (message sent over `errors`)
const OP = 3; // index into the export-name list; −1 = exit
const NARGS = 4;
const READY = 5; // 1 once the helper instantiated the module
const ARGS_OFFSET = 64; // Float64 arguments start here
const MAX_ARGS = 32;

// Evaluated as a CommonJS script in the worker: there is no compiled .js file to point at under vitest (src/)
// or from dist/, so the worker body travels as a string.
const WORKER_SOURCE = `
const { workerData } = require("node:worker_threads");
const { module, memory, control, names, errors } = workerData;
const instance = new WebAssembly.Instance(module, { env: { memory } });
const fns = names.map((n) => instance.exports[n]);
const ctl = new Int32Array(control, 0, 16);
const args = new Float64Array(control, ${ARGS_OFFSET}, ${MAX_ARGS});
Atomics.store(ctl, ${READY}, 1);
Atomics.notify(ctl, ${READY});
let seen = 0;
for (;;) {
  while (Atomics.load(ctl, ${SEQ}) === seen) Atomics.wait(ctl, ${SEQ}, seen);
  seen = Atomics.load(ctl, ${SEQ});
  const op = ctl[${OP}];
  if (op < 0) break;
  try {
    fns[op](...args.subarray(0, ctl[${NARGS}]));
    ctl[${FAILED}] = 0;
  } catch (err) {
    ctl[${FAILED}] = 1;
    errors.postMessage(String(err && err.stack ? err.stack : err));
  }
  Atomics.store(ctl, ${DONE}, seen);
  Atomics.notify(ctl, ${DONE});
}
`;

export class KernelThread {
  private readonly worker: Worker;
  private readonly ctl: Int32Array;
  private readonly args: Float64Array;
  private readonly names: readonly string[];
  private readonly errors: MessagePort;
  private seq = 0;
  private pending = false;
  private dead = false;

  /** Starts the helper and waits (synchronously, up to `startTimeoutMs`) until it is ready; throws if not. */
  constructor(module: WasmModule, memory: WasmMemory, names: readonly string[], startTimeoutMs = 20_000) {
    this.names = names;
    const control = new SharedArrayBuffer(ARGS_OFFSET + MAX_ARGS * 8);
    this.ctl = new Int32Array(control, 0, 16);
    this.args = new Float64Array(control, ARGS_OFFSET, MAX_ARGS);
    const { port1, port2 } = new MessageChannel();
    this.errors = port1;
    port1.unref();
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { module, memory, control, names, errors: port2 },
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

  /** Posts `name(...args)` to the helper; pair every post with wait(). */
  post(name: string, args: readonly number[]): void {
    if (this.pending) throw new Error("kernel worker: post() while a call is still pending");
    if (this.dead) throw new Error("kernel worker thread has died");
    const op = this.names.indexOf(name);
    if (op < 0) throw new Error(`kernel worker: unknown export ${name}`);
    if (args.length > MAX_ARGS) throw new Error(`kernel worker: ${args.length} arguments > ${MAX_ARGS}`);
    this.args.set(args);
    this.ctl[OP] = op;
    this.ctl[NARGS] = args.length;
    this.seq = (this.seq + 1) | 0;
    this.pending = true;
    Atomics.store(this.ctl, SEQ, this.seq);
    Atomics.notify(this.ctl, SEQ);
  }

  /** Blocks until the posted call finished; rethrows its error. */
  wait(): void {
    if (!this.pending) return;
    // Errors inside the call are caught in the helper and reported through FAILED, so DONE always arrives
    // unless the whole thread is killed (e.g. out of memory).
    for (;;) {
      const done = Atomics.load(this.ctl, DONE);
      if (done === this.seq) break;
      Atomics.wait(this.ctl, DONE, done);
    }
    this.pending = false;
    if (this.ctl[FAILED] === 1) {
      const msg = receiveMessageOnPort(this.errors)?.message;
      throw new Error(`kernel worker call failed: ${String(msg ?? "unknown error")}`);
    }
  }

  dispose(): void {
    if (this.dead) return;
    this.dead = true;
    this.ctl[OP] = -1;
    Atomics.store(this.ctl, SEQ, (this.seq + 1) | 0);
    Atomics.notify(this.ctl, SEQ);
    this.errors.close();
  }
}
