import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { loadBinding } from './binding.js';
import { type CapabilityReaders, hasCapability, missingCapabilities, readCapabilities } from './caps.js';
import { NotSupportedError } from './errors.js';

/** Features {@link probeFeature} can test. */
export type BpfFeature =
  | 'fentry'
  | 'fexit'
  | 'lsm'
  | 'tp_btf'
  | 'raw_tp'
  | 'tracepoint'
  | 'uprobe'
  | 'ringbuf';

/** First mainline kernel with each feature. */
export const MIN_KERNEL: Readonly<Record<BpfFeature, string>> = Object.freeze({
  tracepoint: '4.7',
  raw_tp: '4.17',
  uprobe: '4.3',
  tp_btf: '5.5',
  fentry: '5.5',
  fexit: '5.5',
  lsm: '5.7',
  ringbuf: '5.8',
});

const FEATURES = Object.keys(MIN_KERNEL) as BpfFeature[];

/** Result of a feature probe: reason says why not, and what to do. */
export interface FeatureSupport {
  supported: boolean;
  reason?: string;
}

/** 'supported', 'unsupported', or 'error: <why>' when the probe itself failed. */
export type ProgramTypeStatus = 'supported' | 'unsupported' | `error: ${string}`;

/** What this machine allows, and what to fix. */
export interface PreflightReport {
  /** True when BPF programs can be loaded and attached with at least one tracepoint flavour. */
  ok: boolean;
  kernel: string;
  /**
   * Each capability: true/false, or null when this process's capabilities
   * could not be read (then `source` is null and `unknownReason` says why;
   * the program-type probes below are the evidence of what works).
   */
  capabilities: {
    CAP_BPF: boolean | null;
    CAP_PERFMON: boolean | null;
    CAP_SYS_ADMIN: boolean | null;
    CAP_DAC_READ_SEARCH: boolean | null;
    /** The effective set, hex ('' when unknown). */
    effective: string;
    /** Where it was read: /proc/self/status, capget(2), or null when neither worked. */
    source: 'proc-status' | 'capget' | null;
    unknownReason?: string;
  };
  /** mounted: a tracefs mount exists (from /proc/mounts); reachable: this process can read its events/. */
  tracefs: { mounted: boolean; path: string | null; reachable: boolean };
  btf: boolean;
  programTypes: Record<'tracepoint' | 'tp_btf' | 'raw_tp' | 'uprobe' | 'fentry' | 'lsm', ProgramTypeStatus>;
  ringbuf: ProgramTypeStatus;
  /** Blocking problems, each with the fix. */
  problems: string[];
  /** Non-blocking gaps (an optional program type missing), each with the fallback. */
  warnings: string[];
}

const TRACEFS_PATHS = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'];

/** Where tracefs is mounted with its events/ directory reachable by this process, or null. */
export function tracefsPath(): string | null {
  for (const p of TRACEFS_PATHS) if (existsSync(`${p}/events`)) return p;
  return null;
}

/** Where tracefs is mounted according to /proc/mounts (reachable or not), or null. */
export function tracefsMount(mounts?: string): string | null {
  let text = mounts;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/mounts', 'utf8');
    } catch {
      return null;
    }
  }
  const found = text
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f[2] === 'tracefs')
    .map((f) => f[1]!);
  return TRACEFS_PATHS.find((p) => found.includes(p)) ?? found[0] ?? null;
}

const TRACEFS_FIX =
  'mount tracefs at /sys/kernel/tracing (mount -t tracefs nodev /sys/kernel/tracing), or use tp_btf';

const cache = new Map<BpfFeature, FeatureSupport>();

function extraCheck(feature: BpfFeature): string | undefined {
  if (feature === 'tracepoint' && tracefsPath() === null) {
    return tracefsMount() === null
      ? `programs load but cannot attach: tracefs is not mounted; ${TRACEFS_FIX}`
      : 'programs load but cannot attach: tracefs is mounted but not readable by this process (needs CAP_DAC_READ_SEARCH); use tp_btf or grant it';
  }
  if (feature === 'uprobe' && !existsSync('/sys/bus/event_source/devices/uprobe/type')) {
    return 'the kernel has no uprobe PMU (CONFIG_UPROBE_EVENTS)';
  }
  if (feature === 'lsm') {
    try {
      const lsms = readFileSync('/sys/kernel/security/lsm', 'utf8');
      if (!lsms.split(',').includes('bpf'))
        return `BPF LSM is not enabled (active: ${lsms.trim()}); boot with lsm=...,bpf`;
    } catch {
      // securityfs not readable: the attach probe has already answered.
    }
  }
  return undefined;
}

/**
 * Finds out whether a feature works here by loading (and, where it is
 * harmless, attaching) a two-instruction program. Results are cached per
 * process. Never throws for an unsupported feature.
 */
export function probeFeature(feature: BpfFeature): FeatureSupport {
  if (!FEATURES.includes(feature)) {
    throw new TypeError(`feature must be one of ${FEATURES.join(', ')}, got ${JSON.stringify(feature)}`);
  }
  const hit = cache.get(feature);
  if (hit) return { ...hit };
  const r = loadBinding().probeProgram(feature);
  let out: FeatureSupport;
  if (r.supported) {
    const extra = extraCheck(feature);
    out = extra === undefined ? { supported: true } : { supported: false, reason: extra };
  } else {
    const caps = readCapabilities();
    const missing = caps.known
      ? missingCapabilities(feature === 'uprobe' ? 'uprobe' : 'load', caps.effective)
      : [];
    const why =
      r.errno === 1 && missing.length > 0
        ? `permission denied: missing ${missing.join(', ')}`
        : r.errno === 1 && !caps.known
          ? `permission denied (EPERM); this process cannot read its own capabilities (${caps.reason}), so which one is missing is unknown`
          : r.errno === 1
            ? `the kernel refused the ${r.stage} with EPERM although this process is privileged (kernel lockdown, an LSM, or the feature is disabled)`
            : `${r.stage} failed: ${r.message}`;
    const log = r.log.trim();
    out = { supported: false, reason: log ? `${why}; ${log.split('\n').slice(-2).join(' ')}` : why };
  }
  cache.set(feature, out);
  return { ...out };
}

/** Throws NotSupportedError (feature, minimum kernel, reason) unless the feature works here. */
export function requireFeature(feature: BpfFeature): void {
  const r = probeFeature(feature);
  if (!r.supported) throw new NotSupportedError(feature, MIN_KERNEL[feature], r.reason ?? 'unsupported');
}

/** Clears cached probe results (after mounting tracefs, say). */
export function resetFeatureCache(): void {
  cache.clear();
}

function status(feature: BpfFeature): ProgramTypeStatus {
  try {
    return probeFeature(feature).supported ? 'supported' : 'unsupported';
  } catch (err) {
    return `error: ${(err as Error).message}`;
  }
}

/** Options of {@link preflight}. */
export interface PreflightOptions {
  /** Where capabilities are read from (tests inject unreadable sources). */
  capabilities?: CapabilityReaders;
  /**
   * A kernel BTF file the objects will be opened with (OpenOptions.btfCustomPath):
   * a kernel without /sys/kernel/btf/vmlinux is then a warning, not a problem.
   */
  btfCustomPath?: string;
}

/**
 * Checks what loading and attaching need, before libbpf's misleading
 * messages (EPERM blamed on RLIMIT_MEMLOCK) get a chance: capabilities,
 * tracefs, kernel BTF and each program type. When the capabilities cannot be
 * read (a non-dumpable process cannot read /proc/self/status, and capget(2)
 * is unavailable), it says so and lets the program-type probes decide,
 * instead of reporting capabilities missing. Never throws.
 */
export function preflight(options: PreflightOptions = {}): PreflightReport {
  const state = readCapabilities(options.capabilities);
  const eff = state.known ? state.effective : undefined;
  const has = (name: Parameters<typeof hasCapability>[0]) =>
    eff === undefined ? null : hasCapability(name, eff);
  const caps: PreflightReport['capabilities'] = {
    CAP_BPF: has('CAP_BPF'),
    CAP_PERFMON: has('CAP_PERFMON'),
    CAP_SYS_ADMIN: has('CAP_SYS_ADMIN'),
    CAP_DAC_READ_SEARCH: has('CAP_DAC_READ_SEARCH'),
    effective: eff === undefined ? '' : eff.toString(16),
    source: state.known ? state.source : null,
    ...(state.known ? {} : { unknownReason: state.reason }),
  };
  const problems: string[] = [];
  const warnings: string[] = [];
  const btf = existsSync('/sys/kernel/btf/vmlinux');
  if (!btf && options.btfCustomPath !== undefined && existsSync(options.btfCustomPath))
    warnings.push(
      `kernel BTF is missing (/sys/kernel/btf/vmlinux): CO-RE relocations use ${options.btfCustomPath}; tp_btf, fentry and LSM programs cannot attach, raw_tp is used`,
    );
  else if (!btf)
    problems.push(
      options.btfCustomPath === undefined
        ? 'kernel BTF is missing (/sys/kernel/btf/vmlinux): use a kernel built with CONFIG_DEBUG_INFO_BTF=y, or give a BTF file for this kernel (btf_custom_path, from BTFHub)'
        : `kernel BTF is missing (/sys/kernel/btf/vmlinux) and the BTF file ${options.btfCustomPath} does not exist: fix btf_custom_path`,
    );
  const loadMissing = eff === undefined ? [] : missingCapabilities('load', eff);
  if (eff === undefined) {
    warnings.push(
      `cannot determine capabilities (${state.known ? '' : state.reason}); whether BPF can be loaded is decided by loading a test program`,
    );
  } else if (loadMissing.length > 0) {
    const memlock = loadMissing.includes('CAP_SYS_RESOURCE');
    problems.push(
      memlock
        ? `missing ${loadMissing.join(', ')}: loading BPF on this kernel (before 5.11, BPF memory is charged to RLIMIT_MEMLOCK) needs CAP_BPF, CAP_PERFMON and CAP_SYS_RESOURCE, or an unlimited memlock limit; run as root, grant them (setcap cap_bpf,cap_perfmon,cap_sys_resource+ep) or start with ulimit -l unlimited (LimitMEMLOCK=infinity)`
        : `missing ${loadMissing.join(', ')}: loading BPF needs CAP_BPF and CAP_PERFMON; run as root or grant them (setcap cap_bpf,cap_perfmon+ep)`,
    );
  }
  if (caps.CAP_SYS_ADMIN === false) warnings.push('missing CAP_SYS_ADMIN: uprobes cannot be attached');
  const tracefs = tracefsPath();
  const mount = tracefsMount();
  if (mount === null) {
    warnings.push(`tracefs is not mounted: classic tracepoints cannot attach; ${TRACEFS_FIX}`);
  } else if (
    tracefs === null ||
    (caps.CAP_DAC_READ_SEARCH === false && caps.CAP_SYS_ADMIN === false && process.getuid?.() !== 0)
  ) {
    warnings.push(
      `missing CAP_DAC_READ_SEARCH: tracefs at ${mount} cannot be read, so classic tracepoints cannot attach; use tp_btf or grant it`,
    );
  }

  const canProbe = loadMissing.length === 0;
  const probe = (f: BpfFeature): ProgramTypeStatus =>
    canProbe ? status(f) : 'error: not probed (missing capabilities)';
  const programTypes = {
    tracepoint: probe('tracepoint'),
    tp_btf: probe('tp_btf'),
    raw_tp: probe('raw_tp'),
    uprobe: probe('uprobe'),
    fentry: probe('fentry'),
    lsm: probe('lsm'),
  };
  const ringbuf = probe('ringbuf');
  if (canProbe) {
    for (const [f, s] of Object.entries(programTypes)) {
      if (s === 'supported') continue;
      const reason = probeFeature(f as BpfFeature).reason ?? s;
      warnings.push(`${f} unavailable (${reason})${f === 'fentry' ? '; fall back to tp_btf/raw_tp' : ''}`);
    }
    // Capabilities unknown and the kernel says EPERM: that is the problem, not
    // the kernel version or the program types (which all failed for it).
    const refused =
      eff === undefined &&
      programTypes.raw_tp !== 'supported' &&
      /permission denied|EPERM/.test(probeFeature('raw_tp').reason ?? '');
    if (refused) {
      problems.push(
        'loading BPF was refused (EPERM) and this process cannot read its capabilities: loading BPF needs CAP_BPF and CAP_PERFMON; run as root or grant them (setcap cap_bpf,cap_perfmon+ep)',
      );
    } else {
      if (ringbuf !== 'supported')
        problems.push(`BPF ring buffer unavailable: needs Linux ${MIN_KERNEL.ringbuf}+`);
      if (
        programTypes.tp_btf !== 'supported' &&
        programTypes.raw_tp !== 'supported' &&
        programTypes.tracepoint !== 'supported'
      ) {
        problems.push('no tracepoint flavour works (tracepoint, tp_btf, raw_tp): see warnings');
      }
    }
  }
  return {
    ok: problems.length === 0,
    kernel: release(),
    capabilities: caps,
    tracefs: { mounted: mount !== null, path: tracefs ?? mount, reachable: tracefs !== null },
    btf,
    programTypes,
    ringbuf,
    problems,
    warnings,
  };
}

/** Number of possible CPUs (sizes per-CPU map values). */
export function numPossibleCpus(): number {
  return loadBinding().numPossibleCpus();
}
