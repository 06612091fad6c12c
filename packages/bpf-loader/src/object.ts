import {
  loadBinding,
  type NativeBinding,
  type NativeGlobalInfo,
  type NativeObjectHandle,
} from './binding.js';
import { requireBtfFile } from './btf-file.js';
import { missingCapabilities, readCapabilities } from './caps.js';
import { BpfError, NotSupportedError } from './errors.js';
import { encodeGlobal } from './globals.js';
import { type BpfMap, BpfMapImpl, type MapInfo } from './map.js';
import { type BpfFeature, MIN_KERNEL, probeFeature } from './preflight.js';
import { type RingBufferOptions, RingBufferReader, resolveRingOptions } from './ringbuf.js';
import { optional, requireBoolean, requireInt, requireOptions, requireString, U32_MAX } from './validate.js';

/** A program of the object, as libbpf sees it after open. */
export interface ProgramInfo {
  readonly name: string;
  /** ELF section, e.g. 'tp_btf/sched_process_exec'. */
  readonly section: string;
  /** Attach kind from the section: 'tracepoint', 'tp_btf', 'raw_tp', 'uprobe', 'uretprobe', 'fentry', … */
  readonly type: string;
  readonly autoload: boolean;
}

/** A `const volatile` (or .data/.bss) variable settable with setGlobal. */
export interface GlobalInfo {
  readonly name: string;
  readonly section: string;
  readonly size: number;
  readonly readonly: boolean;
}

/** How to attach a program; omit for libbpf's auto-attach by section name. */
export type AttachSpec =
  | { kind: 'tracepoint'; category: string; name: string }
  | { kind: 'tp_btf' }
  | { kind: 'raw_tp'; name: string }
  | { kind: 'uprobe' | 'uretprobe'; binaryPath: string; symbol?: string; offset?: number; pid?: number };

/** An attachment. Closing it detaches the program; closing the object closes it too. */
export interface BpfLink {
  readonly program: string;
  readonly closed: boolean;
  close(): void;
  [Symbol.dispose](): void;
}

/** Options of {@link BpfObject.open}. */
export interface OpenOptions {
  /** Object name (libbpf uses a prefix of it for internal map names). Default: file base name. */
  name?: string;
  /** Path of stella_bpf.node, overriding prebuilds/ and build/Release. */
  bindingPath?: string;
  /**
   * Kernel BTF file for CO-RE relocations instead of /sys/kernel/btf/vmlinux
   * (libbpf's `btf_custom_path`), for kernels built without
   * CONFIG_DEBUG_INFO_BTF: a file from BTFHub for that exact kernel build, or
   * one made with `pahole --btf_encode_detached` from its debug vmlinux. Only
   * relocations use it: tp_btf, fentry and LSM programs still need the
   * kernel's own BTF, raw_tp and tracepoint programs do not. Must be a
   * readable file (BpfError 'OPEN' otherwise) holding raw BTF, or an ELF
   * file with a .BTF section, whose header is sound ('BTF_INVALID'
   * otherwise); both name operation 'btf_custom_path'. BTF with a sound
   * header but wrong contents still fails load() with 'LOAD'.
   */
  btfCustomPath?: string;
}

const NATIVE = Symbol('stellaops.bpf-loader.native');

const EPERM = 1;
const EACCES = 13;

const SECTION_KINDS: Array<[RegExp, string]> = [
  [/^(tp|tracepoint)\//, 'tracepoint'],
  [/^tp_btf\//, 'tp_btf'],
  [/^raw_(tp|tracepoint)(\.w)?(\/|$)/, 'raw_tp'],
  [/^uretprobe(\.s)?(\/|$)/, 'uretprobe'],
  [/^uprobe(\.s)?(\/|$)/, 'uprobe'],
  [/^usdt(\/|$)/, 'usdt'],
  [/^fentry(\.s)?\//, 'fentry'],
  [/^fexit(\.s)?\//, 'fexit'],
  [/^fmod_ret(\.s)?\//, 'fmod_ret'],
  [/^lsm(\.s)?\//, 'lsm'],
  [/^kretprobe(\/|$)/, 'kretprobe'],
  [/^kprobe(\/|$)/, 'kprobe'],
];

/** Attach kind of a program from its ELF section name (libbpf's section conventions). */
export function programKind(section: string, progType: string): string {
  for (const [re, kind] of SECTION_KINDS) if (re.test(section)) return kind;
  return progType;
}

function privilegeError(err: unknown, step: 'load' | 'tracepoint' | 'uprobe' | 'attach'): unknown {
  if (!(err instanceof BpfError) || (err.errno !== EPERM && err.errno !== EACCES)) return err;
  if (err.code === 'LOAD' && err.errno === EACCES) return err; // the verifier said no
  const action = step === 'attach' ? 'load' : step;
  const caps = readCapabilities();
  // Unknown (a non-dumpable process cannot read /proc/self/status): never claim a capability is missing.
  if (!caps.known) return err;
  // Only a load allocates BPF memory (charged to RLIMIT_MEMLOCK before 5.11).
  const missing = missingCapabilities(action, caps.effective).filter(
    (c) => step === 'load' || c !== 'CAP_SYS_RESOURCE',
  );
  if (missing.length === 0) return err; // privileged, yet refused: lockdown or an LSM; keep libbpf's error
  const memlock = missing.includes('CAP_SYS_RESOURCE');
  const what =
    step === 'load'
      ? 'loading BPF programs and maps'
      : step === 'uprobe'
        ? 'attaching uprobes'
        : step === 'tracepoint'
          ? 'attaching tracefs tracepoints'
          : 'attaching';
  const needed =
    step === 'uprobe'
      ? ['CAP_BPF', 'CAP_PERFMON', 'CAP_SYS_ADMIN']
      : step === 'tracepoint'
        ? ['CAP_BPF', 'CAP_PERFMON', 'CAP_DAC_READ_SEARCH']
        : memlock
          ? ['CAP_BPF', 'CAP_PERFMON', 'CAP_SYS_RESOURCE']
          : ['CAP_BPF', 'CAP_PERFMON'];
  const setcap = needed.map((c) => c.toLowerCase()).join(',');
  return new BpfError(`${err.operation}: permission denied (${what})`, {
    code: 'PRIVILEGE',
    operation: err.operation,
    ...(err.errno === undefined ? {} : { errno: err.errno }),
    libbpfLog: err.libbpfLog,
    hint:
      `this process lacks ${missing.join(', ')}: ${what} needs ${needed.join(', ')}. ` +
      `Run as root, grant them (setcap ${setcap}+ep <node binary>), or add them to the container (--cap-add). ` +
      (memlock
        ? 'This kernel (before 5.11) charges BPF memory to RLIMIT_MEMLOCK and libbpf raises that limit, which needs ' +
          'CAP_SYS_RESOURCE; or start the collector with an unlimited limit (ulimit -l unlimited, LimitMEMLOCK=infinity).'
        : "libbpf's RLIMIT_MEMLOCK advice does not apply: kernels since 5.11 account BPF memory to the cgroup."),
    cause: err,
  });
}

const KERNEL_GATED = new Set<BpfFeature>(['fentry', 'fexit', 'lsm']);

/**
 * A privileged load refused with EPERM while the object holds fentry/fexit/lsm
 * programs that the kernel refuses (as on kernels with lockdown or without
 * BPF trampolines): a NotSupportedError naming the feature, so callers can
 * setAutoload(false) those programs and fall back to tp_btf/raw_tp.
 */
function unsupportedError(err: unknown, programs: readonly ProgramInfo[]): NotSupportedError | undefined {
  if (!(err instanceof BpfError) || err.code !== 'LOAD' || err.errno !== EPERM) return undefined;
  const caps = readCapabilities();
  if (caps.known && missingCapabilities('load', caps.effective).length > 0) return undefined;
  for (const p of programs) {
    if (!p.autoload || !KERNEL_GATED.has(p.type as BpfFeature)) continue;
    const feature = p.type as BpfFeature;
    const probe = probeFeature(feature);
    if (probe.supported) continue;
    return new NotSupportedError(
      feature,
      MIN_KERNEL[feature],
      `program '${p.name}' (${p.section}): ${probe.reason}`,
      {
        code: 'LOAD',
        operation: err.operation,
        errno: EPERM,
        libbpfLog: err.libbpfLog,
        hint: `open the object again, setAutoload('${p.name}', false) and attach a tp_btf or raw_tp fallback; ${feature} needs Linux ${MIN_KERNEL[feature]}+ without lockdown`,
      },
    );
  }
  return undefined;
}

class Link implements BpfLink {
  readonly program: string;
  readonly #id: number;
  readonly #owner: BpfObject;
  #closed = false;

  constructor(program: string, id: number, owner: BpfObject) {
    this.program = program;
    this.#id = id;
    this.#owner = owner;
  }

  get closed(): boolean {
    return this.#closed || this.#owner.closed;
  }

  close(): void {
    if (this.closed) return;
    this.#closed = true;
    this.#owner[NATIVE]().detach(this.#id);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

function validateSpec(spec: unknown): AttachSpec | undefined {
  if (spec === undefined) return undefined;
  if (spec === null || typeof spec !== 'object')
    throw new TypeError('attach spec must be an object with a kind');
  const kind = (spec as { kind?: unknown }).kind;
  switch (kind) {
    case 'tracepoint': {
      const o = requireOptions(spec, 'tracepoint spec', ['kind', 'category', 'name']);
      return {
        kind,
        category: requireString(o.category, 'spec.category'),
        name: requireString(o.name, 'spec.name'),
      };
    }
    case 'tp_btf':
      requireOptions(spec, 'tp_btf spec', ['kind']);
      return { kind };
    case 'raw_tp': {
      const o = requireOptions(spec, 'raw_tp spec', ['kind', 'name']);
      return { kind, name: requireString(o.name, 'spec.name') };
    }
    case 'uprobe':
    case 'uretprobe': {
      const o = requireOptions(spec, `${kind} spec`, ['kind', 'binaryPath', 'symbol', 'offset', 'pid']);
      const out: AttachSpec = { kind, binaryPath: requireString(o.binaryPath, 'spec.binaryPath') };
      const symbol = optional(o, 'symbol', requireString, 'spec');
      const offset = optional(o, 'offset', (v, w) => requireInt(v, w, 0, Number.MAX_SAFE_INTEGER), 'spec');
      const pid = optional(o, 'pid', (v, w) => requireInt(v, w, -1, 0x3fffffff), 'spec');
      if (symbol === undefined && offset === undefined) {
        throw new TypeError(`${kind} spec needs a symbol or an offset`);
      }
      if (symbol !== undefined) out.symbol = symbol;
      if (offset !== undefined) out.offset = offset;
      if (pid !== undefined) out.pid = pid;
      return out;
    }
    default:
      throw new TypeError(
        `attach spec kind must be 'tracepoint', 'tp_btf', 'raw_tp', 'uprobe' or 'uretprobe', got ${JSON.stringify(kind)}`,
      );
  }
}

/**
 * One libbpf bpf_object: open → configure (setGlobal, resizeMap,
 * setAutoload) → load → attach, each step failing with its own BpfError
 * code. Needs CAP_BPF + CAP_PERFMON to load (open does not).
 */
export class BpfObject implements Disposable {
  readonly #native: NativeObjectHandle;
  readonly #binding: NativeBinding;
  readonly #links = new Set<Link>();
  readonly #readers = new Set<RingBufferReader>();
  readonly #maps = new Map<string, BpfMapImpl>();
  #closed = false;
  #loaded = false;

  private constructor(binding: NativeBinding, native: NativeObjectHandle) {
    this.#binding = binding;
    this.#native = native;
  }

  /**
   * Opens an object from a file path or an in-memory ELF image. Parses ELF
   * and BTF; touches no kernel state. Throws BpfError 'OPEN' (or 'BINDING',
   * or 'BTF_INVALID' for a btfCustomPath that is not BTF).
   */
  static open(file: string | Buffer, opts?: OpenOptions): BpfObject {
    if (typeof file === 'string') requireString(file, 'file');
    else if (Buffer.isBuffer(file)) {
      if (file.length === 0) throw new RangeError('file Buffer must not be empty');
    } else {
      throw new TypeError(`file must be a path string or a Buffer holding an ELF object, got ${typeof file}`);
    }
    const o = requireOptions(opts, 'open options', ['name', 'bindingPath', 'btfCustomPath']);
    const name = optional(o, 'name', requireString, 'options');
    const bindingPath = optional(o, 'bindingPath', requireString, 'options');
    const btfPath = optional(o, 'btfCustomPath', requireString, 'options');
    if (btfPath !== undefined) requireBtfFile(btfPath);
    const binding = loadBinding(bindingPath);
    const native = new binding.NativeObject(file, name, btfPath);
    return new BpfObject(binding, native);
  }

  /** @internal The native handle; throws 'CLOSED' after close(). */
  [NATIVE](): NativeObjectHandle {
    if (this.#closed) {
      throw new BpfError('the BPF object is closed', { code: 'CLOSED', operation: 'use after close' });
    }
    return this.#native;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get loaded(): boolean {
    return this.#loaded;
  }

  get programs(): readonly ProgramInfo[] {
    return this[NATIVE]()
      .programs()
      .map((p) =>
        Object.freeze({
          name: p.name,
          section: p.section,
          type: programKind(p.section, p.progType),
          autoload: p.autoload,
        }),
      );
  }

  get maps(): readonly MapInfo[] {
    return this[NATIVE]()
      .maps()
      .map((m) =>
        Object.freeze({
          name: m.name,
          type: m.type,
          keySize: m.keySize,
          valueSize: m.valueSize,
          maxEntries: m.maxEntries,
        }),
      );
  }

  /** Variables of .rodata/.data/.bss, from the object's BTF. */
  get globals(): readonly GlobalInfo[] {
    return this[NATIVE]()
      .globals()
      .map((g: NativeGlobalInfo) =>
        Object.freeze({ name: g.name, section: g.section, size: g.size, readonly: g.readonly }),
      );
  }

  /**
   * Sets a global before load. Numbers, bigints and booleans are encoded
   * little-endian in the variable's size; a Buffer must match it exactly.
   * Throws BpfError 'CONFIGURE' for an unknown name, a size mismatch, a
   * value that does not fit, or a call after load().
   */
  setGlobal(name: string, value: Buffer | number | bigint | boolean): void {
    requireString(name, 'global name');
    const native = this[NATIVE]();
    if (this.#loaded) {
      throw new BpfError(`setGlobal: cannot set '${name}' after load()`, {
        code: 'CONFIGURE',
        operation: 'setGlobal',
        errno: 16,
      });
    }
    const g = native.globals().find((v) => v.name === name);
    if (g === undefined) {
      const known = native
        .globals()
        .map((v) => v.name)
        .join(', ');
      throw new BpfError(`setGlobal: no global variable named '${name}' (known: ${known || 'none'})`, {
        code: 'CONFIGURE',
        operation: 'setGlobal',
        errno: 2,
        hint: 'declare it in the BPF C as `const volatile <type> name = <default>;`',
      });
    }
    const encoded = encodeGlobal(value, g.size, name);
    if (!Buffer.isBuffer(encoded)) {
      throw new BpfError(`setGlobal: ${encoded.error}`, {
        code: 'CONFIGURE',
        operation: 'setGlobal',
        errno: 34,
      });
    }
    native.setGlobal(name, encoded);
  }

  /** Sets a map's max_entries before load (ring buffers: a power of 2 multiple of the page size). */
  resizeMap(name: string, maxEntries: number): void {
    requireString(name, 'map name');
    requireInt(maxEntries, 'maxEntries', 1, U32_MAX);
    const native = this[NATIVE]();
    const info = native.maps().find((m) => m.name === name);
    if (info?.type === 'ringbuf') {
      const page = 4096;
      if (maxEntries % page !== 0 || (maxEntries & (maxEntries - 1)) !== 0) {
        throw new RangeError(
          `ring buffer '${name}' size must be a power of 2 and a multiple of ${page} bytes, got ${maxEntries}`,
        );
      }
    }
    native.resizeMap(name, maxEntries);
  }

  /** Chooses whether a program is loaded. Before load only. */
  setAutoload(program: string, autoload: boolean): void {
    requireString(program, 'program name');
    requireBoolean(autoload, 'autoload');
    this[NATIVE]().setAutoload(program, autoload);
  }

  /**
   * Loads maps and programs into the kernel. Throws BpfError 'LOAD' with the
   * verifier log in libbpfLog, or 'PRIVILEGE' naming the missing capabilities.
   * A failed load leaves the object unusable: close it and open again.
   */
  load(): void {
    const native = this[NATIVE]();
    try {
      native.load();
    } catch (err) {
      throw unsupportedError(err, this.programs) ?? privilegeError(err, 'load');
    }
    this.#loaded = true;
  }

  /**
   * Attaches one program. Without a spec libbpf picks the target from the
   * section name. Throws BpfError 'ATTACH' (missing target, bad symbol) or
   * 'PRIVILEGE'.
   */
  attach(program: string, spec?: AttachSpec): BpfLink {
    requireString(program, 'program name');
    const s = validateSpec(spec);
    const native = this[NATIVE]();
    let id: number;
    try {
      id = s === undefined ? native.attach(program) : native.attach(program, s);
    } catch (err) {
      const kind = s?.kind ?? this.programs.find((p) => p.name === program)?.type;
      throw privilegeError(
        err,
        kind === 'uprobe' || kind === 'uretprobe'
          ? 'uprobe'
          : kind === 'tracepoint'
            ? 'tracepoint'
            : 'attach',
      );
    }
    const link = new Link(program, id, this);
    this.#links.add(link);
    return link;
  }

  /** A loaded map by name. Throws BpfError 'MAP' for an unknown name. */
  map(name: string): BpfMap {
    requireString(name, 'map name');
    const native = this[NATIVE]();
    const cached = this.#maps.get(name);
    if (cached) return cached;
    if (!this.#loaded) {
      throw new BpfError(`map '${name}': maps are usable after load()`, { code: 'MAP', operation: 'map' });
    }
    const info = native.maps().find((m) => m.name === name);
    if (info === undefined) {
      const known = native
        .maps()
        .map((m) => m.name)
        .join(', ');
      throw new BpfError(`no map named '${name}' (known: ${known})`, {
        code: 'MAP',
        operation: 'map',
        errno: 2,
      });
    }
    const m = new BpfMapImpl(info, this.#binding.numPossibleCpus(), () => this[NATIVE]());
    this.#maps.set(name, m);
    return m;
  }

  /** Opens a reader on a ring buffer map. After load only. Throws BpfError 'RINGBUF'. */
  ringBuffer(mapName: string, opts?: RingBufferOptions): RingBufferReader {
    requireString(mapName, 'map name');
    const resolved = resolveRingOptions(opts);
    const native = this[NATIVE]();
    const reader = new RingBufferReader(
      mapName,
      resolved,
      (onBatch) => native.openRing(mapName, resolved.latencyMs, resolved.maxBatchRecords, onBatch),
      (r) => this.#readers.delete(r),
    );
    this.#readers.add(reader);
    return reader;
  }

  /** Closes readers, links and the object. Idempotent. */
  close(): void {
    if (this.#closed) return;
    for (const r of [...this.#readers]) r.close();
    this.#closed = true;
    this.#native.close();
    this.#links.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
