import { describe, expect, it } from 'vitest';
import { BpfError, NotSupportedError } from './errors.js';

describe('BpfError', () => {
  it('carries code, errno, operation, log and a hint derived from code and errno', () => {
    const e = new BpfError('bpf_object__load: cannot load', {
      code: 'LOAD',
      operation: 'bpf_object__load',
      errno: 13,
      libbpfLog: 'R0 invalid mem access',
    });
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('BpfError');
    expect(e.code).toBe('LOAD');
    expect(e.errno).toBe(13);
    expect(e.libbpfLog).toBe('R0 invalid mem access');
    expect(e.hint).toMatch(/verifier/);
    expect(e.message).toBe(`bpf_object__load: cannot load; ${e.hint}`);
  });

  it('an explicit hint wins; a cause is kept', () => {
    const cause = new Error('inner');
    const e = new BpfError('x', { code: 'ATTACH', operation: 'op', hint: 'do this', cause });
    expect(e.hint).toBe('do this');
    expect(e.cause).toBe(cause);
    expect(e.libbpfLog).toBe('');
    expect(e.errno).toBeUndefined();
  });

  it('ENOENT on attach points at the target name and tracefs', () => {
    const e = new BpfError('x', { code: 'ATTACH', operation: 'op', errno: 2 });
    expect(e.hint).toMatch(/mount tracefs at \/sys\/kernel\/tracing/);
  });
});

describe('NotSupportedError', () => {
  it('names the feature and minimum kernel, and is a BpfError', () => {
    const e = new NotSupportedError('fentry', '5.5', 'the kernel refused the load with EPERM', { errno: 1 });
    expect(e).toBeInstanceOf(BpfError);
    expect(e.name).toBe('NotSupportedError');
    expect(e.feature).toBe('fentry');
    expect(e.minKernel).toBe('5.5');
    expect(e.errno).toBe(1);
    expect(e.message).toMatch(/^fentry is not supported here: the kernel refused/);
    expect(e.hint).toMatch(/Linux 5\.5/);
  });
});
