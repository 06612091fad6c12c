import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { commandUnavailableReason, gate } from '@stellaops/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureFixtures, fixture } from './helpers.js';

const child = fileURLToPath(new URL('./privilege-child.mts', import.meta.url));
const tsx = fileURLToPath(new URL('../../../node_modules/tsx/dist/loader.mjs', import.meta.url));

function reason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to drop to an unprivileged user with setpriv';
  return commandUnavailableReason('setpriv');
}

describe.runIf(gate('bpf-loader unprivileged error', reason()))('loading without privileges', () => {
  beforeAll(() => ensureFixtures());

  it("fails with 'PRIVILEGE' and a hint naming CAP_BPF, not libbpf's memlock advice", () => {
    const stdout = execFileSync(
      'setpriv',
      [
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        '--inh-caps=-all',
        process.execPath,
        '--import',
        tsx,
        child,
        fixture('fixture.bpf.o'),
      ],
      { encoding: 'utf8', env: { ...process.env, HOME: '/tmp' }, timeout: 30_000 },
    );
    const out = JSON.parse(stdout);
    expect(out.opened).toBe(true); // open needs no privilege
    expect(out.loaded).toBeUndefined();
    expect(out.error.name).toBe('BpfError');
    expect(out.error.code).toBe('PRIVILEGE');
    expect(out.error.errno).toBe(1);
    expect(out.error.hint).toMatch(/lacks CAP_BPF, CAP_PERFMON/);
    expect(out.error.message).toMatch(/permission denied \(loading BPF programs and maps\)/);
    expect(out.error.message).not.toMatch(/^.*RLIMIT_MEMLOCK.*increase/i);
    expect(out.preflight.ok).toBe(false);
    expect(out.preflight.capabilities.CAP_BPF).toBe(false);
    expect(out.preflight.problems.join('\n')).toMatch(/missing CAP_BPF, CAP_PERFMON/);
  });
});
