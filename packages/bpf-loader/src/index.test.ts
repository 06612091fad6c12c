import { describe, expect, it } from 'vitest';
import * as api from './index.js';

describe('public surface', () => {
  it('exports exactly these runtime names (a rename must be deliberate)', () => {
    expect(Object.keys(api).sort()).toEqual(
      [
        'BpfError',
        'BpfObject',
        'MIN_KERNEL',
        'NotSupportedError',
        'RingBufferReader',
        'bindingCandidates',
        'bpfChargesMemlock',
        'effectiveCapabilities',
        'loadBinding',
        'loadedBindingPath',
        'makeRecordBatch',
        'missingCapabilities',
        'readCapabilities',
        'numPossibleCpus',
        'preflight',
        'probeFeature',
        'programKind',
        'requireFeature',
        'resetFeatureCache',
        'tracefsMount',
        'tracefsPath',
      ].sort(),
    );
  });

  it('programKind maps libbpf section names to attach kinds', () => {
    expect(api.programKind('tp/syscalls/sys_enter_openat', 'tracepoint')).toBe('tracepoint');
    expect(api.programKind('tracepoint/sched/sched_process_exec', 'tracepoint')).toBe('tracepoint');
    expect(api.programKind('tp_btf/sched_process_exec', 'tracing')).toBe('tp_btf');
    expect(api.programKind('raw_tp/sys_enter', 'raw_tracepoint')).toBe('raw_tp');
    expect(api.programKind('raw_tracepoint.w/x', 'raw_tracepoint_writable')).toBe('raw_tp');
    expect(api.programKind('uprobe', 'kprobe')).toBe('uprobe');
    expect(api.programKind('uprobe//lib/libc.so.6:connect', 'kprobe')).toBe('uprobe');
    expect(api.programKind('uretprobe.s', 'kprobe')).toBe('uretprobe');
    expect(api.programKind('fentry/vfs_read', 'tracing')).toBe('fentry');
    expect(api.programKind('lsm/file_open', 'lsm')).toBe('lsm');
    expect(api.programKind('socket', 'socket_filter')).toBe('socket_filter');
  });
});
