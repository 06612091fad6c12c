import {
  MIN_KERNEL,
  NotSupportedError,
  preflight,
  probeFeature,
  requireFeature,
  tracefsMount,
  tracefsPath,
} from '@stellaops/bpf-loader';
import { canRunBpf } from '@stellaops/testing';
import { describe, expect, it } from 'vitest';

describe.runIf(canRunBpf('bpf-loader preflight'))('preflight and feature probes (real kernel)', () => {
  it('reports what this root process can do, and the tracefs state as it really is', () => {
    const r = preflight();
    expect(r.btf).toBe(true);
    expect(r.capabilities.CAP_BPF || r.capabilities.CAP_SYS_ADMIN).toBe(true);
    expect(r.programTypes.raw_tp).toBe('supported');
    expect(r.programTypes.tp_btf).toBe('supported');
    expect(r.programTypes.uprobe).toBe('supported');
    expect(r.ringbuf).toBe('supported');
    expect(r.ok).toBe(true);
    expect(r.problems).toEqual([]);
    expect(r.tracefs.reachable).toBe(tracefsPath() !== null);
    expect(r.tracefs.mounted).toBe(tracefsMount() !== null);
    expect(r.programTypes.tracepoint).toBe(r.tracefs.mounted ? 'supported' : 'unsupported');
    if (!r.tracefs.mounted) expect(r.warnings.join('\n')).toMatch(/mount tracefs at \/sys\/kernel\/tracing/);
  });

  const eacces = () => {
    throw Object.assign(new Error("EACCES: permission denied, open '/proc/self/status'"), { code: 'EACCES' });
  };

  it('an unreadable /proc/self/status falls back to capget(2), not to "missing CAP_BPF"', () => {
    const r = preflight({ capabilities: { readStatus: eacces } });
    expect(r.capabilities.source).toBe('capget');
    expect(r.capabilities.CAP_BPF || r.capabilities.CAP_SYS_ADMIN).toBe(true);
    expect(r.capabilities.effective).toBe(preflight().capabilities.effective); // capget agrees with /proc
    expect(r.problems.join('\n')).not.toMatch(/missing CAP_/);
    expect(r.ok).toBe(true);
  });

  it('capabilities that cannot be read at all are reported as unknown; the load probes decide', () => {
    const r = preflight({ capabilities: { readStatus: eacces, capget: () => undefined } });
    expect(r.capabilities).toMatchObject({ CAP_BPF: null, CAP_PERFMON: null, source: null, effective: '' });
    expect(r.warnings.join('\n')).toContain(
      'cannot determine capabilities (/proc/self/status: EACCES; capget(2) is not available)',
    );
    expect(r.problems.join('\n')).not.toMatch(/missing CAP_/);
    expect(r.programTypes.raw_tp).toBe('supported'); // probed by loading, although the capabilities are unknown
    expect(r.ok).toBe(true);
  });

  it('tracefsMount reads /proc/mounts', () => {
    expect(tracefsMount('tracefs /sys/kernel/tracing tracefs rw 0 0\nproc /proc proc rw 0 0\n')).toBe(
      '/sys/kernel/tracing',
    );
    expect(tracefsMount('proc /proc proc rw 0 0\n')).toBeNull();
  });

  it('probeFeature answers by loading a program; an unsupported feature says why', () => {
    expect(probeFeature('raw_tp')).toEqual({ supported: true });
    expect(probeFeature('ringbuf')).toEqual({ supported: true });
    for (const f of ['fentry', 'fexit', 'lsm'] as const) {
      const r = probeFeature(f);
      if (!r.supported) expect(r.reason).toMatch(/EPERM|not enabled|failed/);
    }
    expect(() => probeFeature('kprobe' as never)).toThrow(TypeError);
  });

  it('requireFeature throws NotSupportedError with the feature and minimum kernel', () => {
    expect(() => requireFeature('tp_btf')).not.toThrow();
    const missing = (['fentry', 'lsm', 'tracepoint'] as const).find((f) => !probeFeature(f).supported);
    if (missing === undefined) return; // everything works on this kernel: nothing to report
    try {
      requireFeature(missing);
      throw new Error('expected NotSupportedError');
    } catch (e) {
      expect(e).toBeInstanceOf(NotSupportedError);
      const err = e as NotSupportedError;
      expect(err.feature).toBe(missing);
      expect(err.minKernel).toBe(MIN_KERNEL[missing]);
      expect(err.message).toContain(`${missing} is not supported here`);
    }
  });
});
