import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hostIdentity } from './host.js';

describe('hostIdentity', () => {
  const dir = mkdtempSync(join(tmpdir(), 'stella-host-'));
  const machineId = join(dir, 'machine-id');
  const btf = join(dir, 'vmlinux');
  writeFileSync(machineId, '0123456789abcdef0123456789abcdef\n');
  writeFileSync(btf, 'not really BTF');

  it('derives a stable host id that does not reveal the machine-id', () => {
    const a = hostIdentity({ machineId, btf });
    expect(a.hostId).toMatch(/^[0-9a-f]{32}$/);
    expect(a.hostId).not.toContain('0123456789abcdef');
    expect(hostIdentity({ machineId, btf }).hostId).toBe(a.hostId);
    expect(a.kernelRelease).toBe(release());
    expect(a.btfId).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('names the BTF by the sha256 of all of it, also past the 1 MiB it reads at a time', () => {
    const big = join(dir, 'vmlinux-big');
    const bytes = randomBytes(5 * 1024 * 1024 + 123);
    writeFileSync(big, bytes);
    expect(hostIdentity({ machineId, btf: big }).btfId).toBe(
      `sha256:${createHash('sha256').update(bytes).digest('hex')}`,
    );
  });

  it('says when the kernel has no BTF', () => {
    expect(hostIdentity({ machineId, btf: join(dir, 'absent') }).btfId).toBeUndefined();
  });
});
