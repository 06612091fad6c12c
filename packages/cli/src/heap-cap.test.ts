import { describe, expect, it } from 'vitest';
import { COLLECTOR_HEAP_FLAGS, heapCapArgs } from './heap-cap.js';

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
