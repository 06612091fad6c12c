import { describe, expect, it } from 'vitest';
import { compilePathFilter, PathGlobError } from './path-filter.js';

describe('compilePathFilter', () => {
  it('turns the spec globs into in-kernel prefixes with no user-space work', () => {
    const f = compilePathFilter(['/etc/**', '/var/lib/**'], ['/proc/**', '/sys/**']);
    expect(f.kernelAllowPrefixes).toEqual(['/etc/', '/var/lib/']);
    expect(f.kernelDenyPrefixes).toEqual(['/proc/', '/sys/']);
    expect(f.needsUserCheck).toBe(false);
    expect(f.allows('/etc/ssl/openssl.cnf')).toBe(true);
    expect(f.allows('/etcetera')).toBe(false);
    expect(f.allows('/usr/bin/env')).toBe(false);
  });

  it('keeps everything when the allow list is empty', () => {
    const f = compilePathFilter([], ['/proc/**']);
    expect(f.kernelAllowPrefixes).toEqual([]);
    expect(f.allows('/usr/lib/libc.so.6')).toBe(true);
    expect(f.allows('/proc/self/maps')).toBe(false);
  });

  it('narrows a single-segment glob in the kernel and matches it exactly in user space', () => {
    const f = compilePathFilter(['/usr/lib/*.so*'], []);
    expect(f.kernelAllowPrefixes).toEqual(['/usr/lib/']);
    expect(f.needsUserCheck).toBe(true);
    expect(f.allows('/usr/lib/libssl.so.3')).toBe(true);
    expect(f.allows('/usr/lib/x86_64-linux-gnu/libssl.so.3')).toBe(false);
    expect(f.allows('/usr/lib/README')).toBe(false);
  });

  it('never denies in the kernel what is not a whole subtree', () => {
    const f = compilePathFilter([], ['/tmp/*.log', '/etc/shadow']);
    expect(f.kernelDenyPrefixes).toEqual([]);
    expect(f.allows('/tmp/a.log')).toBe(false);
    expect(f.allows('/tmp/sub/a.log')).toBe(true);
    expect(f.allows('/etc/shadow')).toBe(false);
    expect(f.allows('/etc/shadow-')).toBe(true);
  });

  it('treats regex metacharacters in paths literally', () => {
    const f = compilePathFilter(['/opt/app+v1.(x)/**'], []);
    expect(f.allows('/opt/app+v1.(x)/bin')).toBe(true);
    expect(f.allows('/opt/appp+v1.(x)/bin')).toBe(false);
  });

  it('drops prefixes covered by a shorter one', () => {
    expect(compilePathFilter(['/etc/**', '/etc/ssl/**'], []).kernelAllowPrefixes).toEqual(['/etc/']);
  });

  it('rejects relative globs and unsupported syntax with the glob named', () => {
    expect(() => compilePathFilter(['etc/**'], [])).toThrow(PathGlobError);
    expect(() => compilePathFilter([], ['/etc/{a,b}'])).toThrow("path glob '/etc/{a,b}'");
  });
});
