/** What failed. Callers branch on this, never on message text. */
export type BpfErrorCode =
  | 'OPEN'
  /** OpenOptions.btfCustomPath names a file that is not BTF (or is truncated). */
  | 'BTF_INVALID'
  | 'CONFIGURE'
  | 'LOAD'
  | 'ATTACH'
  | 'MAP'
  | 'RINGBUF'
  | 'CLOSED'
  | 'PRIVILEGE'
  | 'BINDING';

/** Fields of a {@link BpfError} besides its message. */
export interface BpfErrorDetails {
  code: BpfErrorCode;
  /** The libbpf or kernel operation that failed, e.g. `bpf_object__load`. */
  operation: string;
  /** errno reported by libbpf or the kernel, when there is one. */
  errno?: number;
  /** Everything libbpf printed during the operation (the verifier log for LOAD). */
  libbpfLog?: string;
  /** What to do about it. Derived from code and errno when not given. */
  hint?: string;
  cause?: unknown;
}

const EPERM = 1;
const ENOENT = 2;
const EACCES = 13;
const EBUSY = 16;
const EINVAL = 22;
const E2BIG = 7;
const ENOSPC = 28;

function defaultHint(d: BpfErrorDetails): string | undefined {
  switch (d.code) {
    case 'OPEN':
      if (d.errno === ENOENT) return 'check the path of the BPF object file';
      return 'the file must be a BPF ELF object built with clang -target bpf -g (BTF is required)';
    case 'BTF_INVALID':
      return 'use the BTF of this exact kernel build (BTFHub, or pahole --btf_encode_detached)';
    case 'CONFIGURE':
      if (d.errno === EBUSY) return 'set globals, map sizes and autoload between open() and load()';
      return 'names come from the object: see BpfObject.programs, .maps and .globals';
    case 'LOAD':
      if (d.errno === EPERM) return 'loading BPF needs CAP_BPF and CAP_PERFMON (or root); run preflight()';
      if (d.errno === EACCES || d.errno === EINVAL)
        return 'the verifier rejected a program: read libbpfLog for the failing instruction';
      if (d.errno === E2BIG || d.errno === ENOSPC) return 'a program or map is too large for this kernel';
      return undefined;
    case 'ATTACH':
      if (d.errno === ENOENT)
        return 'the attach target does not exist: check the tracepoint/function/symbol name, or mount tracefs at /sys/kernel/tracing for classic tracepoints';
      if (d.errno === EPERM || d.errno === EACCES)
        return 'attaching needs CAP_PERFMON (CAP_SYS_ADMIN for uprobes, CAP_DAC_READ_SEARCH for tracefs); run preflight()';
      return undefined;
    case 'MAP':
      if (d.errno === EINVAL)
        return 'key and value lengths must match the map (per-CPU values: nCPU * roundup(size, 8))';
      return undefined;
    case 'RINGBUF':
      return undefined;
    case 'CLOSED':
      return 'the object or reader was closed; open a new one';
    case 'PRIVILEGE':
      return 'run as root, or grant CAP_BPF and CAP_PERFMON (setcap cap_bpf,cap_perfmon+ep)';
    case 'BINDING':
      return 'build the native addon: npm run build:native -w @stellaops/bpf-loader';
  }
}

/**
 * Every failure of the loader. `code` says which step failed; `errno`,
 * `operation` and `libbpfLog` say how; `hint` says what to do. Thrown from
 * native code too (the addon receives this class at init).
 */
export class BpfError extends Error {
  readonly code: BpfErrorCode;
  readonly errno?: number;
  readonly operation: string;
  readonly libbpfLog: string;
  readonly hint?: string;

  constructor(message: string, details: BpfErrorDetails) {
    const hint = details.hint ?? defaultHint(details);
    super(
      hint ? `${message}; ${hint}` : message,
      details.cause === undefined ? undefined : { cause: details.cause },
    );
    this.name = this.constructor.name;
    this.code = details.code;
    if (details.errno !== undefined) this.errno = details.errno;
    this.operation = details.operation;
    this.libbpfLog = details.libbpfLog ?? '';
    if (hint !== undefined) this.hint = hint;
  }
}

/** A kernel feature this machine lacks. Names the feature and the first kernel that has it. */
export class NotSupportedError extends BpfError {
  readonly feature: string;
  readonly minKernel: string;

  constructor(feature: string, minKernel: string, reason: string, details: Partial<BpfErrorDetails> = {}) {
    super(`${feature} is not supported here: ${reason}`, {
      code: details.code ?? 'LOAD',
      operation: details.operation ?? `probeFeature(${feature})`,
      ...(details.errno === undefined ? {} : { errno: details.errno }),
      libbpfLog: details.libbpfLog ?? '',
      hint: details.hint ?? `needs Linux ${minKernel} or newer with ${feature} enabled`,
    });
    this.feature = feature;
    this.minKernel = minKernel;
  }
}

export const errno = { EPERM, ENOENT, EACCES, EBUSY, EINVAL } as const;
