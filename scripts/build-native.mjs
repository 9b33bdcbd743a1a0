#!/usr/bin/env node
// Builds the optional native kernels (src/tensor/kernels/native/*.cc: AVX2 + FMA versions of the hot wasm
// kernels, same bits) into build/native/llamarec-kernels.node with the machine's C++ compiler and the headers
// of the running Node (Node-API only: no node-gyp, no network). Run by `npm run build` (so `npm ci` builds it
// through `prepare`). Never fails the install: without a compiler or headers, or on a non-x86-64 machine, it
// prints one line and the wasm kernels are used. Rebuilds only when a source (or this script) is newer than the
// addon. `--force` rebuilds anyway.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const srcDir = join(root, "src", "tensor", "kernels", "native");
const outDir = join(root, "build", "native");
const out = join(outDir, "llamarec-kernels.node");
const include = join(dirname(dirname(process.execPath)), "include", "node");
const cxx = process.env.CXX || "g++";
// -ffp-contract=off: the compiler must not fuse a multiply and an add the wasm kernels keep apart.
const common = ["-O3", "-std=c++17", "-fPIC", "-ffp-contract=off", "-fno-math-errno", "-Wall", "-I", include];
// Only the kernels use AVX2/FMA; the glue (CPU check, argument parsing) runs on any x86-64.
const units = [
  { src: "addon.cc", flags: [] },
  { src: "kernels.cc", flags: ["-mavx2", "-mfma"] },
];

function skip(reason) {
  console.log(`build-native: skipped (${reason}); the wasm kernels will be used`);
  process.exit(0);
}

if (process.arch !== "x64") skip(`${process.arch} is not x86-64`);
if (!existsSync(join(include, "node_api.h"))) skip(`no Node-API headers at ${include}`);
try {
  execFileSync(cxx, ["--version"], { stdio: "ignore" });
} catch {
  skip(`no C++ compiler (${cxx})`);
}

const inputs = [
  fileURLToPath(import.meta.url),
  ...readdirSync(srcDir)
    .filter((f) => f.endsWith(".cc") || f.endsWith(".h"))
    .map((f) => join(srcDir, f)),
];
const newest = Math.max(...inputs.map((f) => statSync(f).mtimeMs));
if (!process.argv.includes("--force") && existsSync(out) && statSync(out).mtimeMs >= newest) {
  console.log(`build-native: ${out} is up to date`);
  process.exit(0);
}

mkdirSync(outDir, { recursive: true });
const tmp = `${out}.${process.pid}.tmp`;
const objects = [];
try {
  for (const u of units) {
    const obj = join(outDir, `${u.src}.${process.pid}.o`);
    execFileSync(cxx, [...common, ...u.flags, "-c", join(srcDir, u.src), "-o", obj], { stdio: "inherit" });
    objects.push(obj);
  }
  execFileSync(cxx, ["-shared", "-o", tmp, ...objects], { stdio: "inherit" });
  renameSync(tmp, out);
  console.log(`build-native: wrote ${out}`);
} catch (err) {
  rmSync(tmp, { force: true });
  console.log(`build-native: compile failed (${err.message.split("\n")[0]}); the wasm kernels will be used`);
} finally {
  for (const o of objects) rmSync(o, { force: true });
}
