/**
 * Public surface of the tensor library (float32, reverse-mode autograd on a global tape). Names follow
 * PyTorch where one exists. For trainers:
 *   const opt = new AdamW(model.parameters(), { lr, weightDecay, betas, eps, noDecay: (name) => name.includes("bias") });
 *   opt.zeroGrad(); model.lossAndBackward(batch); clipGradNorm(params, max); opt.step();
 *   saveSafetensors(path, module.stateDict()) / module.loadStateDict(loadSafetensors(path));
 *   const s = opt.stateDict(); saveSafetensors(path, s.tensors, s.metadata);
 *   opt.loadStateDict(loadSafetensorsFile(path));   // {tensors, metadata} round-trips as is
 * Ops record themselves only when grad mode is on and an input requires grad; wrap inference in noGrad().
 */
export { type GradCheckOptions, type GradCheckResult, gradCheck } from "./gradcheck.js";
export { allocFloat32, BufferArena, isArenaBuffer, withArena } from "./memory.js";
export { Dropout, Embedding, LayerNorm, Linear } from "./nn/layers.js";
export { Module, ModuleList } from "./nn/module.js";
export { gelu } from "./ops/activation.js";
export { linearCrossEntropy } from "./ops/cross_entropy.js";
export { dropout } from "./ops/dropout.js";
export {
  add,
  addScalar,
  cos,
  exp,
  log,
  mul,
  neg,
  scale,
  sigmoid,
  silu,
  sin,
  sqrt,
  sub,
} from "./ops/elementwise.js";
export { embedding } from "./ops/embedding.js";
export { linearRecurrenceScan, type ScanLayout } from "./ops/linear_recurrence.js";
export { linear, type MatmulOptions, matmul } from "./ops/matmul.js";
export { layerNorm, rmsNorm } from "./ops/norm.js";
export { mean, meanAll, sum, sumAll } from "./ops/reduce.js";
export { concat, reshape, slice, transpose } from "./ops/shape.js";
export { logSoftmax, softmax } from "./ops/softmax.js";
export { AdamW, type AdamWOptions, type OptimizerState } from "./optim/adamw.js";
export { clipGradNorm } from "./optim/clip.js";
export { Rng } from "./rng.js";
export {
  decodeSafetensors,
  encodeSafetensors,
  loadSafetensors,
  loadSafetensorsFile,
  type NamedArray,
  type SafetensorsFile,
  saveSafetensors,
} from "./safetensors.js";
export { erf, erfinv } from "./special.js";
export { backward, clearTape, isGradEnabled, needsGrad, noGrad, record, tapeLength } from "./tape.js";
export { Parameter, type Shape, sizeOf, Tensor } from "./tensor.js";
export type { WeightLike } from "./weight.js";
