import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { bpfChargesMemlock, tracefsPath } from '@stellaops/bpf-loader';
import { canRunBpf, commandUnavailableReason, gate, scaled } from '@stellaops/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureFixtures, fixture, targetBin } from './helpers.js';

const child = fileURLToPath(new URL('./privilege-child.mts', import.meta.url));
const tsx = fileURLToPath(new URL('../../../node_modules/tsx/dist/loader.mjs', import.meta.url));

function reason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to drop to an unprivileged user with setpriv';
  return commandUnavailableReason('setpriv');
}

/** Runs the child as nobody with exactly `caps` (setpriv names: bpf, perfmon, …). */
function asNobody(caps: string[]) {
  const set = ['-all', ...caps.map((c) => `+${c}`)].join(',');
  const stdout = execFileSync(
    'setpriv',
    [
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      `--inh-caps=${set}`,
      `--ambient-caps=${set}`,
      process.execPath,
      '--import',
      tsx,
      child,
      fixture('fixture.bpf.o'),
      targetBin,
    ],
    { encoding: 'utf8', env: { ...process.env, HOME: '/tmp' }, timeout: scaled(30_000) },
  );
  return JSON.parse(stdout);
}

describe.runIf(
  canRunBpf('bpf-loader privilege errors') && gate('bpf-loader privilege errors (setpriv)', reason()),
)('privilege errors a user sees', () => {
  beforeAll(() => ensureFixtures());

  it("no capabilities: load fails with 'PRIVILEGE' naming CAP_BPF and CAP_PERFMON, not memlock", () => {
    const out = asNobody([]);
    expect(out.open).toBe('ok'); // open needs no privilege
    expect(out.load.name).toBe('BpfError');
    expect(out.load.code).toBe('PRIVILEGE');
    expect(out.load.errno).toBe(1);
    expect(out.load.hint).toMatch(/lacks CAP_BPF, CAP_PERFMON/);
    expect(out.load.message).toMatch(
      /^bpf_object__load: permission denied \(loading BPF programs and maps\)/,
    );
    if (bpfChargesMemlock()) {
      // Before 5.11 the memlock limit is part of the problem, and said so.
      expect(out.load.hint).toMatch(/lacks CAP_BPF, CAP_PERFMON, CAP_SYS_RESOURCE/);
    } else {
      expect(out.load.message).not.toMatch(/increase.*RLIMIT_MEMLOCK|ulimit -l/i);
    }
    expect(out.preflight.ok).toBe(false);
    expect(out.preflight.capabilities.CAP_BPF).toBe(false);
    expect(out.preflight.problems.join('\n')).toMatch(/missing CAP_BPF, CAP_PERFMON/);
  });

  it('no capabilities, and none readable: preflight blames the refused load (EPERM), not the kernel version', () => {
    const index = fileURLToPath(new URL('../src/index.ts', import.meta.url));
    const unreadable =
      "{ readStatus: () => { throw Object.assign(new Error('EACCES'), { code: 'EACCES' }); }, capget: () => undefined }";
    const script = `import('${index}').then((m) => console.log(JSON.stringify(m.preflight({ capabilities: ${unreadable} }))))`;
    const r = JSON.parse(
      execFileSync(
        'setpriv',
        [
          '--reuid=65534',
          '--regid=65534',
          '--clear-groups',
          '--inh-caps=-all',
          process.execPath,
          '--import',
          tsx,
          '-e',
          script,
        ],
        { encoding: 'utf8', env: { ...process.env, HOME: '/tmp' }, timeout: 30_000 },
      ),
    );
    expect(r.ok).toBe(false);
    expect(r.capabilities.CAP_BPF).toBeNull();
    expect(r.warnings.join('\n')).toContain('cannot determine capabilities');
    expect(r.problems[0]).toMatch(
      /^loading BPF was refused \(EPERM\) and this process cannot read its capabilities/,
    );
    expect(r.problems.join('\n')).not.toMatch(/ring buffer unavailable|needs Linux/);
  });

  // Before 5.11 BPF memory is charged to RLIMIT_MEMLOCK: with CAP_BPF and
  // CAP_PERFMON alone libbpf cannot raise the limit, and the error says so.
  it.runIf(bpfChargesMemlock())(
    'before 5.11, CAP_BPF + CAP_PERFMON without CAP_SYS_RESOURCE: the load error and preflight name CAP_SYS_RESOURCE and the memlock limit',
    () => {
      const out = asNobody(['bpf', 'perfmon']);
      expect(out.load.code).toBe('PRIVILEGE');
      expect(out.load.hint).toMatch(/lacks CAP_SYS_RESOURCE: loading BPF programs and maps needs/);
      expect(out.load.hint).toMatch(/RLIMIT_MEMLOCK/);
      expect(out.preflight.ok).toBe(false);
      expect(out.preflight.problems.join('\n')).toMatch(/missing CAP_SYS_RESOURCE/);
    },
  );

  it('CAP_BPF + CAP_PERFMON (+ CAP_SYS_RESOURCE before 5.11): loads and attaches tp_btf/raw_tp; uprobes say CAP_SYS_ADMIN, tracefs tracepoints CAP_DAC_READ_SEARCH', () => {
    const out = asNobody(bpfChargesMemlock() ? ['bpf', 'perfmon', 'sys_resource'] : ['bpf', 'perfmon']);
    expect(out.load).toBe('ok');
    expect(out.tp_btf).toBe('ok');
    expect(out.raw_tp).toBe('ok');
    expect(out.uprobe.code).toBe('PRIVILEGE');
    expect(out.uprobe.hint).toMatch(/lacks CAP_SYS_ADMIN: attaching uprobes needs/);
    if (tracefsPath() !== null) {
      expect(out.tracepoint.code).toBe('PRIVILEGE');
      expect(out.tracepoint.hint).toMatch(/lacks CAP_DAC_READ_SEARCH: attaching tracefs tracepoints/);
    } else {
      expect(out.tracepoint.code).toBe('ATTACH');
      expect(out.tracepoint.hint).toMatch(/mount tracefs/);
    }
    expect(out.preflight.ok).toBe(true);
    expect(out.preflight.warnings.join('\n')).toMatch(/missing CAP_SYS_ADMIN: uprobes cannot be attached/);
  });
});
