import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bindingCandidates, loadBinding, loadedBindingPath, packageRoot } from './binding.js';
import { BpfError } from './errors.js';

// One process per test file (vitest forks), so the addon is not loaded yet here.
describe('loadBinding', () => {
  it('looks in prebuilds/<platform>-<arch> (Node-API, libc tagged) before build/Release', () => {
    expect(bindingCandidates('/pkg', 'glibc')).toEqual([
      `/pkg/prebuilds/${process.platform}-${process.arch}/stella_bpf.napi.glibc.node`,
      '/pkg/build/Release/stella_bpf.node',
    ]);
    // This test machine runs glibc (Debian).
    expect(bindingCandidates('/pkg')[0]).toMatch(/\.napi\.glibc\.node$/);
  });

  it("a missing explicit path is 'BINDING' naming the path option", () => {
    expect.assertions(3);
    try {
      loadBinding('/nonexistent/stella_bpf.node');
    } catch (e) {
      expect(e).toBeInstanceOf(BpfError);
      expect((e as BpfError).code).toBe('BINDING');
      expect((e as BpfError).message).toMatch(/\/nonexistent\/stella_bpf\.node.*check bindingPath/);
    }
  });

  it("a file that is not an addon is 'BINDING' (dlopen)", () => {
    const bogus = join(tmpdir(), `stella-bogus-${process.pid}.node`);
    writeFileSync(bogus, 'not a shared object');
    expect(() => loadBinding(bogus)).toThrow(
      expect.objectContaining({ code: 'BINDING', operation: 'dlopen' }),
    );
    expect(loadedBindingPath()).toBeUndefined();
  });

  it('loads build/Release by default, then refuses to switch to another path', () => {
    const b = loadBinding();
    expect(loadedBindingPath()).toBe(join(packageRoot, 'build', 'Release', 'stella_bpf.node'));
    expect(b.libbpfVersion).toMatch(/^1\.\d+$/);
    expect(loadBinding()).toBe(b);
    expect(() => loadBinding('/other/stella_bpf.node')).toThrow(expect.objectContaining({ code: 'BINDING' }));
  });
});
