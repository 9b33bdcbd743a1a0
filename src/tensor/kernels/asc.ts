// The one AssemblyScript compile step behind the build scripts that embed WebAssembly in generated modules
// (wasm-build.ts for the tensor kernels, src/retrievers/catalogue-scorer-build.ts for the catalogue scorer).
// Every module is compiled alike: -O3, no asserts, the stub runtime, an imported (not exported) memory and no
// abort import; callers choose the features, the memory limit and whether the memory is shared.

interface AscMain {
  main(
    argv: string[],
    options: {
      readFile(name: string): string | null;
      writeFile(name: string, contents: Uint8Array | string): void;
      listFiles(): string[];
      stdout: { write(s: string | Uint8Array): void };
      stderr: { write(s: string | Uint8Array): void };
    },
  ): Promise<{ error: Error | null }>;
}

export interface AscModule {
  /** Base name of the in-memory source and output files (`<name>.ts` → `<name>.wasm`). */
  name: string;
  /** AssemblyScript source text. */
  source: string;
  /** Value of `--enable`, e.g. "simd" or "simd,threads,relaxed-simd". */
  enable: string;
  /** `--maximumMemory`, in 64 KiB pages. */
  maximumMemoryPages: number;
  /** `--sharedMemory` (needed for threads). */
  sharedMemory?: boolean;
  /** Named in the error message when the compile fails. */
  label?: string;
}

export async function compileAssemblyScript(module: AscModule): Promise<Uint8Array> {
  // Imported by a computed specifier so tsc does not load the compiler's typings: they declare AssemblyScript's
  // own `console` globals, which would clash with Node's for the whole project.
  const specifier = "assemblyscript/asc";
  const asc = (await import(specifier)).default as AscMain;
  const sourceFile = `${module.name}.ts`;
  const outFile = `${module.name}.wasm`;
  const outputs = new Map<string, Uint8Array | string>();
  const errors: string[] = [];
  const result = await asc.main(
    [
      sourceFile,
      "--outFile",
      outFile,
      "-O3",
      "--noAssert",
      "--runtime",
      "stub",
      "--importMemory",
      "--noExportMemory",
      ...(module.sharedMemory ? ["--sharedMemory"] : []),
      "--initialMemory",
      "1",
      "--maximumMemory",
      String(module.maximumMemoryPages),
      "--enable",
      module.enable,
      "--use",
      "abort=",
    ],
    {
      readFile: (name) => (name === sourceFile ? module.source : null),
      writeFile: (name, contents) => void outputs.set(name, contents),
      listFiles: () => [],
      stdout: { write: () => {} },
      stderr: { write: (s) => void errors.push(typeof s === "string" ? s : Buffer.from(s).toString()) },
    },
  );
  if (result.error)
    throw new Error(
      `AssemblyScript compile${module.label ? ` of ${module.label}` : ""} failed:\n${errors.join("")}`,
    );
  const wasm = outputs.get(outFile);
  if (!(wasm instanceof Uint8Array)) throw new Error(`AssemblyScript produced no ${outFile}`);
  return wasm;
}
