import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BpfError, NotSupportedError } from './errors.js';

/** The raw addon surface. Internal: the wrappers validate before calling it. */
export interface NativeBinding {
  NativeObject: new (file: string | Buffer, name?: string, btfCustomPath?: string) => NativeObjectHandle;
  init(classes: {
    BpfError: typeof BpfError;
    NotSupportedError: typeof NotSupportedError;
    debug: boolean;
  }): void;
  probeProgram(
    feature: string,
  ): { supported: true } | { supported: false; errno: number; stage: string; message: string; log: string };
  numPossibleCpus(): number;
  /** capget(2): the effective capability set of the calling thread. */
  capget(): bigint;
  liveObjects(): number;
  libbpfVersion: string;
}

export interface NativeProgramInfo {
  name: string;
  section: string;
  progType: string;
  attachType: string;
  autoload: boolean;
}

export interface NativeMapInfo {
  name: string;
  type: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  internal: boolean;
}

export interface NativeGlobalInfo {
  name: string;
  section: string;
  offset: number;
  size: number;
  readonly: boolean;
}

export interface NativeRingHandle {
  pause(): void;
  resume(): void;
  close(): void;
  drain(): number;
}

export interface NativeObjectHandle {
  programs(): NativeProgramInfo[];
  maps(): NativeMapInfo[];
  globals(): NativeGlobalInfo[];
  setGlobal(name: string, value: Buffer): void;
  resizeMap(name: string, maxEntries: number): void;
  setAutoload(program: string, autoload: boolean): void;
  load(): void;
  attach(program: string, spec?: object): number;
  detach(id: number): boolean;
  mapLookup(map: string, key: Buffer): Buffer | undefined;
  mapUpdate(map: string, key: Buffer, value: Buffer, flags: number): void;
  mapDelete(map: string, key: Buffer): boolean;
  mapNextKey(map: string, key: Buffer | null): Buffer | null;
  mapLookupBatch(map: string): { keys: Buffer; values: Buffer; count: number };
  mapUpdateBatch(map: string, keys: Buffer, values: Buffer, count: number, flags: number): number;
  mapDeleteBatch(map: string, keys: Buffer, count: number): number;
  openRing(
    map: string,
    latencyMs: number,
    maxBatch: number,
    onBatch: (data: Buffer, offsets: Uint32Array, count: number) => void,
  ): NativeRingHandle;
  close(): void;
}

const here = dirname(fileURLToPath(import.meta.url));
/** Package root: src/ and dist/ both sit one level below it. */
export const packageRoot = resolve(here, '..');

const ADDON = 'stella_bpf';

/**
 * 'glibc' or 'musl': prebuilds are tagged with the C library they link
 * against, since a glibc build does not load on musl.
 */
function libcTag(): 'glibc' | 'musl' {
  // The report's network section can take long to gather; it is not needed.
  // (excludeNetwork is in Node 22+, not yet in @types/node.)
  const report = process.report as typeof process.report & { excludeNetwork: boolean };
  const excludeNetwork = report.excludeNetwork;
  report.excludeNetwork = true;
  try {
    const header = (report.getReport() as { header?: { glibcVersionRuntime?: string } }).header;
    return header?.glibcVersionRuntime ? 'glibc' : 'musl';
  } finally {
    report.excludeNetwork = excludeNetwork;
  }
}

/**
 * Where the addon is looked for, in order, when no explicit path is given:
 * the prebuild shipped in the package (prebuildify's layout,
 * `prebuilds/<platform>-<arch>/stella_bpf.napi.<libc>.node`: Node-API, so one
 * file serves every Node version), then a local build in build/Release.
 * scripts/prebuild-name.cjs (the install script's copy) follows the same order.
 */
export function bindingCandidates(root: string = packageRoot, libc: string = libcTag()): string[] {
  return [
    join(root, 'prebuilds', `${process.platform}-${process.arch}`, `${ADDON}.napi.${libc}.node`),
    join(root, 'build', 'Release', `${ADDON}.node`),
  ];
}

/** What to run to get a working addon: in this repository, or as an installed package. */
function rebuildHint(dlopenMessage = ''): string {
  if (/lib(elf|z)\.so/.test(dlopenMessage)) {
    return 'the addon needs libelf.so.1 and libz.so.1: install libelf1 and zlib1g (Debian/Ubuntu) or elfutils-libelf and zlib (Fedora/RHEL)';
  }
  if (existsSync(join(packageRoot, 'scripts', 'build-libbpf.sh'))) {
    return 'build it: npm run build:native -w @stellaops/bpf-loader';
  }
  return 'reinstall it: npm rebuild @stellaops/bpf-loader (uses the prebuild for linux-x64 glibc, else builds from source with a C++ compiler, make, python3, pkg-config, libbpf-dev, libelf-dev and zlib1g-dev)';
}

let loaded: { path: string; binding: NativeBinding } | undefined;

/**
 * Load the native addon once per process: the explicit `bindingPath`, else
 * `STELLA_BPF_BINDING`, else prebuilds/<platform>-<arch>, else build/Release.
 * Throws BpfError 'BINDING' when none loads, or when a different path is
 * asked for after one is loaded.
 */
export function loadBinding(bindingPath?: string): NativeBinding {
  const explicit = bindingPath ?? process.env.STELLA_BPF_BINDING;
  if (loaded) {
    if (explicit !== undefined && resolve(explicit) !== loaded.path) {
      throw new BpfError(
        `native addon already loaded from ${loaded.path}, cannot switch to ${resolve(explicit)}`,
        {
          code: 'BINDING',
          operation: 'loadBinding',
          hint: 'pass the same bindingPath everywhere in one process',
        },
      );
    }
    return loaded.binding;
  }
  if (process.platform !== 'linux') {
    throw new BpfError(`eBPF needs Linux, this is ${process.platform}`, {
      code: 'BINDING',
      operation: 'loadBinding',
      hint: 'run on a Linux host with BTF',
    });
  }
  const candidates = explicit !== undefined ? [resolve(explicit)] : bindingCandidates();
  const path = candidates.find((c) => existsSync(c));
  if (path === undefined) {
    throw new BpfError(`native addon not found (looked at ${candidates.join(', ')})`, {
      code: 'BINDING',
      operation: 'loadBinding',
      errno: 2,
      hint: explicit !== undefined ? 'check bindingPath / STELLA_BPF_BINDING' : rebuildHint(),
    });
  }
  const mod = { exports: {} as NativeBinding };
  try {
    process.dlopen(mod, path);
  } catch (cause) {
    throw new BpfError(`cannot load native addon ${path}: ${(cause as Error).message}`, {
      code: 'BINDING',
      operation: 'dlopen',
      cause,
      hint: rebuildHint((cause as Error).message),
    });
  }
  mod.exports.init({ BpfError, NotSupportedError, debug: process.env.STELLA_BPF_DEBUG === '1' });
  loaded = { path, binding: mod.exports };
  return mod.exports;
}

/** The path the addon was loaded from, if it is loaded. */
export function loadedBindingPath(): string | undefined {
  return loaded?.path;
}
