import { describe, expect, it } from 'vitest';
import * as net from './index.js';

describe('@stellaops/probes net surface', () => {
  it('exports exactly these runtime names (a rename is a deliberate change)', () => {
    expect(Object.keys(net).sort()).toEqual([
      'ElfError',
      'HOST_LIBRARY_DIRS',
      'LIBC_UPROBES',
      'LibraryScanner',
      'NET_COUNTER_SLOT',
      'NET_KIND',
      'NET_LAYOUT',
      'SSL_IO_SYMBOLS',
      'SSL_UPROBES',
      'STATIC_SSL_REQUIRED',
      'TlsCorrelator',
      'UprobeAttacher',
      'classifyLibrary',
      'decodeNetRecord',
      'decodeSockaddr',
      'dynamicFunctions',
      'dynamicFunctionsAsync',
      'fileKey',
      'formatIPv4',
      'formatIPv6',
      'hostLibraries',
      'netObjectPath',
      'openNetProbes',
      'parseMaps',
    ]);
  });

  it('openNetProbes validates options before touching the kernel', () => {
    expect(() => net.openNetProbes({ probes: ['bogus' as 'tcp_state'] })).toThrow(
      /probes: unknown probe 'bogus'/,
    );
    expect(() => net.openNetProbes({ ringBufferBytes: 5000 })).toThrow(
      /ringBufferBytes: must be a power of two/,
    );
    expect(() => net.openNetProbes({ rescanIntervalMs: -1 })).toThrow(/rescanIntervalMs/);
    expect(() => net.openNetProbes({ excludePids: [0] })).toThrow(/excludePids: not a pid: 0/);
    expect(() => net.openNetProbes({ cgroupIds: [1 as unknown as bigint] })).toThrow(/cgroupIds/);
    expect(() => net.openNetProbes({ sslPaths: ['/nonexistent/libssl.so.3'] })).toThrow(
      /sslPaths: no such file/,
    );
    expect(() => net.openNetProbes({ objectPath: '/nonexistent/net.bpf.o' })).toThrow(
      expect.objectContaining({ code: 'OBJECT_MISSING' }),
    );
  });

  it('openNetProbes refuses a userStack that is not a boolean or { sock, tls } of booleans', () => {
    for (const bad of [{ sock: 'yes' }, { tcp: true }, 'tls', null]) {
      expect(() => net.openNetProbes({ userStack: bad as never })).toThrow(
        expect.objectContaining({ code: 'INVALID_OPTION', option: 'userStack' }),
      );
    }
  });

  it('UprobeAttacher probes a file once per key and all-or-nothing', () => {
    const attached: string[] = [];
    const host = {
      attach(program: string) {
        attached.push(program);
        if (program === 'net_accept4_enter') throw new Error('attach failed');
        return { program, closed: false, close() {}, [Symbol.dispose]() {} };
      },
    };
    const a = new net.UprobeAttacher(host, ['libc']);
    const target = {
      kind: 'libc' as const,
      key: 'k',
      path: '/lib/x86_64-linux-gnu/libc.so.6',
      mappedPath: '',
      pid: 1,
    };
    const e = a.attach(target);
    expect(e?.error).toBe('attach failed');
    expect(e?.links).toEqual([]);
    expect(a.attach(target)).toBeUndefined();
    expect(a.attach({ ...target, kind: 'libssl', key: 'other' })).toBeUndefined(); // kind not wanted
  });
});
