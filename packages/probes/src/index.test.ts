import { existsSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as api from './index.js';

describe('@stellaops/probes public surface', () => {
  it('exports exactly these runtime names (a rename is a deliberate change)', () => {
    expect(Object.keys(api).sort()).toEqual([
      'DecodeError',
      'ElfError',
      'FE_PATH_FAULT',
      'FE_PATH_TRUNCATED',
      'FileOpenView',
      'KIND',
      'LAYOUT',
      'NET_KIND',
      'NET_LAYOUT',
      'ProbeOptionError',
      'ProbesError',
      'RESOLUTIONS',
      'SYSCALLS',
      'TlsCorrelator',
      'decodeEvent',
      'decodeNetRecord',
      'decodeSockaddr',
      'netObjectPath',
      'objectPath',
      'openNetProbes',
      'openProbeSet',
      'viewEvent',
    ]);
  });

  it('objectPath points at the shipped object next to the sources', () => {
    const p = api.objectPath('fileexec');
    expect(isAbsolute(p)).toBe(true);
    expect(p).toMatch(/packages\/probes\/bpf\/fileexec\.bpf\.o$/);
    expect(existsSync(p.replace(/\.o$/, '.c'))).toBe(true);
    expect(() => api.objectPath('nope' as 'fileexec')).toThrow(TypeError);
  });

  it('errors carry a code and their class name', () => {
    const e = new api.DecodeError('x', { length: 3 });
    expect(e).toBeInstanceOf(api.ProbesError);
    expect(e.name).toBe('DecodeError');
    expect(e.code).toBe('DECODE');
  });

  it('openProbeSet validates options before touching the kernel', () => {
    expect(() => api.openProbeSet({ probes: ['bogus' as 'exec'] })).toThrow(api.ProbeOptionError);
  });
});
