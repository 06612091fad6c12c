import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { canRunBpf, gate } from '@stellaops/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type BuiltImage,
  buildImage,
  ctrUnavailableReason,
  importImage,
} from '../../../tools/oci-image/ctr.js';

// End to end through the built `stella` binary, as a user runs it.
const pkg = fileURLToPath(new URL('..', import.meta.url));
const bin = join(pkg, 'dist/bin.js');
const root = join(pkg, '../..');

function stella(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function noStack(text: string): void {
  expect(text).not.toMatch(/\n\s+at .+:\d+:\d+/);
}

beforeAll(() => {
  // `npm test` runs from src; this suite needs the binary users get.
  if (!existsSync(bin)) {
    execFileSync('npx', ['nx', 'run', '@stellaops/cli:build'], { cwd: root, stdio: 'ignore' });
  }
}, 300_000);

describe('stella: bad input gets the documented errors and exit codes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'stella-cli-'));

  it('an unknown config key names file, line and key; exit 2', () => {
    const cfg = join(dir, 'bad.yaml');
    writeFileSync(cfg, 'signals:\n  rotation:\n    max_size_mb: 10\n    max_sise_mb: 5\n');
    const r = stella(['signals', 'start', '--config', cfg]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `${cfg}:4:5: unknown key 'signals.rotation.max_sise_mb' (did you mean 'max_size_mb'?)`,
    );
    noStack(r.stderr);
  });

  it('an unknown flag, a bad duration and a bad digest; exit 2', () => {
    expect(stella(['signals', 'start', '--targte', dir]).code).toBe(2);
    const d = stella(['signals', 'start', '--target', dir, '--duration', 'soon']);
    expect(d.code).toBe(2);
    expect(d.stderr).toContain("--duration: 'soon' is not a duration");
    const i = stella(['signals', 'inspect', 'sha256:abc', '--target', dir]);
    expect(i.code).toBe(2);
    expect(i.stderr).toContain("'sha256:abc' is not an image digest");
    noStack(d.stderr + i.stderr);
  });

  it('a missing signing key says how to make one; exit 2', () => {
    const r = stella(['signals', 'start', '--target', join(dir, 'ev'), '--key', join(dir, 'absent.pem')]);
    if (r.code === 3) return; // no privileges here: the privilege check comes first (tested below)
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`signing key ${join(dir, 'absent.pem')} does not exist`);
    expect(r.stderr).toContain('stella signals keygen --out');
  });

  it('status with no collector running says so; exit 3', () => {
    const r = stella(['signals', 'status', '--target', dir]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/no collector is running/);
    noStack(r.stderr);
  });

  it('verify-chain refuses a private key as trust material', () => {
    const keys = mkdtempSync(join(tmpdir(), 'stella-keys-'));
    expect(stella(['signals', 'keygen', '--out', join(keys, 'k.pem')]).code).toBe(0);
    const r = stella(['signals', 'verify-chain', dir, '--key', join(keys, 'k.pem')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('is a private key; give the public key');
  });
});

describe.runIf(canRunBpf('stella signals start, unprivileged'))('stella without privileges', () => {
  it('start as an unprivileged user names the missing capabilities; exit 3, no stack', () => {
    const dir = mkdtempSync(join(tmpdir(), 'stella-unpriv-'));
    const r = spawnSync(
      'setpriv',
      [
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        '--inh-caps=-all',
        process.execPath,
        bin,
        'signals',
        'start',
        '--target',
        dir,
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/CAP_BPF/);
    noStack(r.stderr);
  });
});

const canCtr =
  canRunBpf('stella end to end') && gate('stella end to end with containerd', ctrUnavailableReason());

describe.runIf(canCtr)('stella end to end: start, status, SIGTERM, verify-chain, inspect', () => {
  let image: BuiltImage;
  beforeAll(() => {
    image = buildImage({ ref: 'docker.io/stellaops/cli-e2e:1' });
    importImage(image, 'stella-e2e');
  }, 120_000);

  it('collects a container workload into a chain that verifies and inspects by digest', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stella-e2e-'));
    const evidence = join(dir, 'evidence');
    expect(stella(['signals', 'keygen', '--out', join(dir, 'key.pem')]).code).toBe(0);
    const cfg = join(dir, 'stellaops.yaml');
    writeFileSync(
      cfg,
      [
        'signals:',
        `  output_directory: ${evidence}`,
        '  status_interval_seconds: 1',
        '  rotation:',
        '    max_size_mb: 1',
        '  signing:',
        `    key_path: ${join(dir, 'key.pem')}`,
        '  filters:',
        '    path_denylist: ["/proc/**", "/sys/**"]',
        '',
      ].join('\n'),
    );
    const child: ChildProcess = spawn(process.execPath, [bin, 'signals', 'start', '--config', cfg], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    child.stderr?.on('data', (d: Buffer) => {
      log += d.toString();
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    for (let i = 0; i < 300 && !log.includes('"collector started"'); i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(log).toContain('"collector started"');

    const id = `e2e-${process.pid}`;
    const run = spawn(
      'ctr',
      [
        '-n',
        'stella-e2e',
        'run',
        '--rm',
        image.ref,
        id,
        '/bin/sh',
        '-c',
        'sleep 0.5; cat /etc/passwd > /dev/null; sleep 1',
      ],
      {
        stdio: 'ignore',
      },
    );
    await new Promise((r) => setTimeout(r, 800));
    const status = stella(['signals', 'status', '--config', cfg, '--json']);
    expect(status.code).toBe(0);
    const snap = JSON.parse(status.stdout);
    expect(snap.pid).toBe(child.pid);
    expect(snap.probes.map((p: { name: string }) => p.name)).toContain('file_open');
    await new Promise<void>((r) => run.once('exit', () => r()));
    await new Promise((r) => setTimeout(r, 1500));

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stella(['signals', 'status', '--config', cfg]).code).toBe(3);

    const pub = join(dir, 'key.pub.pem');
    const verify = stella(['signals', 'verify-chain', evidence, '--key', pub, '--json']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    const report = JSON.parse(verify.stdout);
    expect(report.ok).toBe(true);
    expect(report.summary.closed).toBe(true);

    for (const digest of [image.manifestDigest, image.configDigest]) {
      const inspect = stella(['signals', 'inspect', digest, '--config', cfg, '--key', pub, '--json']);
      expect(inspect.code, inspect.stderr).toBe(0);
      const s = JSON.parse(inspect.stdout);
      expect(s.containers.map((c: { id: string }) => c.id)).toContain(id);
      expect(s.files.map((f: { path: string }) => f.path)).toContain('/etc/passwd');
      expect(s.executables.map((e: { filename: string }) => e.filename)).toContain('/bin/sh');
      expect(s.files.some((f: { path: string }) => f.path.startsWith('/proc/'))).toBe(false);
      expect(s.completeness.chainClosed).toBe(true);
    }
    const none = stella(['signals', 'inspect', `sha256:${'0'.repeat(64)}`, '--config', cfg, '--key', pub]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('no verified evidence');

    // Tamper with one byte of a sealed chunk: verification fails and names it.
    const chunk = readdirSync(evidence).find((f) => /^chunk-\d+\.ndjson$/.test(f))!;
    const bytes = readFileSync(join(evidence, chunk));
    const at = Math.floor(bytes.length / 2);
    bytes[at] = (bytes[at] ?? 0) ^ 0x01;
    writeFileSync(join(evidence, chunk), bytes);
    const bad = stella(['signals', 'verify-chain', evidence, '--key', pub]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain(`FAILED ${chunk}`);
  }, 180_000);
});
