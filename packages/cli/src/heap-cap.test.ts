import { describe, expect, it } from 'vitest';
import { COLLECTOR_HEAP_FLAGS, cgroupMemoryLimit, collectorHeapFlags, heapCapArgs } from './heap-cap.js';

const node = '/usr/bin/node';
const bin = '/usr/lib/node_modules/@stellaops/cli/bin/stella.js';

describe('heapCapArgs: stella signals start runs with a bounded heap', () => {
  it('re-executes start with the heap flags before the script and keeps every argument', () => {
    expect(
      heapCapArgs([node, bin, 'signals', 'start', '--target', '/ev'], ['--enable-source-maps'], undefined),
    ).toEqual([
      node,
      ...COLLECTOR_HEAP_FLAGS,
      '--enable-source-maps',
      bin,
      'signals',
      'start',
      '--target',
      '/ev',
    ]);
  });

  it('leaves every other command alone', () => {
    for (const cmd of ['status', 'verify-chain', 'follow', 'inspect', 'keygen'])
      expect(heapCapArgs([node, bin, 'signals', cmd], [], undefined)).toBeUndefined();
    expect(heapCapArgs([node, bin, '--version'], [], undefined)).toBeUndefined();
  });

  it("the user's own heap flags win, in NODE_OPTIONS or node's arguments, with - or _", () => {
    const argv = [node, bin, 'signals', 'start'];
    expect(heapCapArgs(argv, [], '--max-old-space-size=512 --max-semi-space-size=16')).toBeUndefined();
    expect(heapCapArgs(argv, ['--max_old_space_size=512', '--max-semi-space-size=16'], '')).toBeUndefined();
    // Only what is missing is added: after the re-exec nothing is, so it happens once.
    const once = heapCapArgs(argv, [], '--max-old-space-size=512')!;
    expect(once.filter((a) => a.startsWith('--max'))).toEqual(['--max-semi-space-size=2']);
    expect(heapCapArgs(argv, ['--max-semi-space-size=2'], '--max-old-space-size=512')).toBeUndefined();
  });
});

describe('the heap cap follows the cgroup memory limit', () => {
  const argv = [node, bin, 'signals', 'start'];
  const oldSpace = (limit?: number) =>
    heapCapArgs(argv, [], undefined, limit)?.find((a) => a.startsWith('--max-old'));

  it('lowers the old space to 35 % of a tight limit (at least 64 MiB), keeps 192 MiB where that fits', () => {
    expect(oldSpace(256 * 1048576)).toBe('--max-old-space-size=89');
    expect(oldSpace(128 * 1048576)).toBe('--max-old-space-size=64');
    expect(oldSpace(512 * 1048576)).toBe('--max-old-space-size=179');
    expect(oldSpace(4096 * 1048576)).toBe('--max-old-space-size=192');
    expect(oldSpace(undefined)).toBe('--max-old-space-size=192');
    expect(collectorHeapFlags(256 * 1048576)[1]).toBe('--max-semi-space-size=2');
  });

  it('reads the tightest limit of the cgroup and its ancestors, v2 and v1', () => {
    const files = (map: Record<string, string>) => (p: string) => {
      if (p in map) return map[p]!;
      throw new Error(`ENOENT ${p}`);
    };
    // v2: the pod's limit sits on a parent of the container's cgroup.
    expect(
      cgroupMemoryLimit(
        files({
          '/proc/self/cgroup': '0::/kubepods/pod1/ctr\n',
          '/sys/fs/cgroup/kubepods/pod1/ctr/memory.max': 'max\n',
          '/sys/fs/cgroup/kubepods/pod1/memory.max': '268435456\n',
          '/sys/fs/cgroup/kubepods/memory.max': '1073741824\n',
        }),
      ),
    ).toBe(268435456);
    // v1 hybrid: the memory controller's line, "unlimited" ignored.
    expect(
      cgroupMemoryLimit(
        files({
          '/proc/self/cgroup': '12:cpu,cpuacct:/x\n4:memory:/stella\n0::/user.slice\n',
          '/sys/fs/cgroup/memory/stella/memory.limit_in_bytes': '268435456\n',
          '/sys/fs/cgroup/memory/memory.limit_in_bytes': '9223372036854771712\n',
          '/sys/fs/cgroup/user.slice/memory.max': 'max\n',
        }),
      ),
    ).toBe(268435456);
    expect(
      cgroupMemoryLimit(files({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/memory.max': 'max' })),
    ).toBe(undefined);
    expect(cgroupMemoryLimit(files({}))).toBe(undefined);
  });
});
