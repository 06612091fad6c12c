import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
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
    // sha256:abc would be a digest prefix; xyz is not hex.
    const i = stella(['signals', 'inspect', 'sha256:xyz', '--target', dir]);
    expect(i.code).toBe(2);
    expect(i.stderr).toContain("'sha256:xyz' is not an image digest");
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

/** `stella signals start ...` as the built binary; as uid 65534 with only CAP_BPF and CAP_PERFMON when `asNobody`. */
function startAs(asNobody: boolean, args: string[]) {
  const argv = [bin, 'signals', 'start', '--duration', '1s', ...args];
  const r = asNobody
    ? spawnSync(
        'setpriv',
        [
          '--reuid=65534',
          '--regid=65534',
          '--clear-groups',
          '--inh-caps=+bpf,+perfmon',
          '--ambient-caps=+bpf,+perfmon',
          process.execPath,
          ...argv,
        ],
        { encoding: 'utf8', timeout: 20_000 },
      )
    : spawnSync(process.execPath, argv, { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, stderr: r.stderr ?? '' };
}

describe.runIf(canRunBpf('stella signals start, bad targets and keys'))(
  'stella start: bad targets and keys say what, where and how to fix; exit 2 (issue 10)',
  () => {
    const base = mkdtempSync(join(tmpdir(), 'stella-target-'));
    const key = join(mkdtempSync(join(tmpdir(), 'stella-tkey-')), 'k.pem');
    beforeAll(() => {
      chmodSync(base, 0o755); // uid 65534 passes through it in the EACCES cases
      expect(stella(['signals', 'keygen', '--out', key]).code).toBe(0);
    });
    const start = (target: string, more: string[] = []) =>
      startAs(false, ['--target', target, '--key', key, ...more]);
    const hintLine = (stderr: string) => expect(stderr).toMatch(/\n {2}hint: \S/);

    it('--target /proc/self/newdir fails at once (no spinning mkdir) naming the proc filesystem', () => {
      const r = start('/proc/self/newdir');
      expect(r.code).toBe(2); // null: killed by the 20 s timeout, still spinning
      expect(r.stderr).toContain(
        'stella: --target: output directory /proc/self/newdir is on a proc pseudo filesystem',
      );
      hintLine(r.stderr);
      noStack(r.stderr);
    }, 40_000);

    it('--target /proc and a sysfs path are refused as pseudo filesystems, not "cannot create lock"', () => {
      for (const [dir, fsName] of [
        ['/proc', 'proc'],
        ['/sys/kernel', 'sysfs'],
      ] as const) {
        const r = start(dir);
        expect(r.code, dir).toBe(2);
        expect(r.stderr).toContain(`output directory ${dir} is on a ${fsName} pseudo filesystem`);
        expect(r.stderr).not.toContain('.lock');
        hintLine(r.stderr);
      }
    }, 40_000);

    it('a target owned by another user is refused and left as it was', () => {
      const dir = mkdtempSync(join(base, 'other-'));
      chownSync(dir, 65534, 65534);
      const r = start(dir);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(
        `output directory ${dir} is owned by uid 65534, but the collector runs as uid 0`,
      );
      expect(r.stderr).toContain(`hint: chown 0 ${dir}`);
      expect(statSync(dir).mode & 0o777).toBe(0o700);
      expect(readdirSync(dir)).toEqual([]);
    }, 40_000);

    it('a group- or world-writable target is refused, never chmod-ed behind the user', () => {
      const dir = mkdtempSync(join(base, 'open-'));
      chmodSync(dir, 0o777);
      const r = start(dir);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(
        `output directory ${dir} has mode 777: every user may add, replace or remove`,
      );
      expect(r.stderr).toContain(`hint: chmod 0750 ${dir}`);
      expect(statSync(dir).mode & 0o777).toBe(0o777);
    }, 40_000);

    it('a target under a world-writable parent without the sticky bit is refused, naming the parent', () => {
      const parent = mkdtempSync(join(base, 'parent-'));
      chmodSync(parent, 0o777);
      const r = start(join(parent, 'ev'));
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(
        `${parent}, a parent of output directory ${join(parent, 'ev')}, is writable by every user without the sticky bit`,
      );
      expect(r.stderr).toContain(`hint: chmod o-w ${parent}`);
      expect(existsSync(join(parent, 'ev'))).toBe(false);
    }, 40_000);

    it('an existing 0755 target under a sticky parent is used as it is, with a warning (kubelet DirectoryOrCreate)', () => {
      const parent = mkdtempSync(join(base, 'sticky-'));
      chmodSync(parent, 0o1777);
      const dir = join(parent, 'ev');
      mkdirSync(dir);
      chmodSync(dir, 0o755);
      const r = start(dir);
      // Not a terminal: the warning is a JSON log line like the others.
      const warning = r.stderr
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { level: string; msg: string })
        .find((l) => l.level === 'warn' && l.msg.startsWith(`output directory ${dir} has mode 755`));
      expect(warning, r.stderr).toBeDefined();
      expect(r.code).toBe(0);
      expect(statSync(dir).mode & 0o777).toBe(0o755);
      expect(readdirSync(dir).some((n) => n.endsWith('.sigstore.json'))).toBe(true);
    }, 60_000);

    it('a target below a file (ENOTDIR) names the file and gives a hint, not raw errno text', () => {
      const file = join(base, 'plain-file');
      writeFileSync(file, 'x');
      const r = start(join(file, 'ev'));
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`stella: --target: output directory ${join(file, 'ev')}`);
      expect(r.stderr).toContain(`cannot be created: ${file} is not a directory`);
      expect(r.stderr).not.toContain('ENOTDIR: not a directory,');
      hintLine(r.stderr);
    }, 40_000);

    it('a target this user may not write (EACCES) says so with a hint', () => {
      const keyDir = mkdtempSync(join(base, 'nobody-key-'));
      chmodSync(keyDir, 0o755);
      const nobodyKey = join(keyDir, 'k.pem');
      copyFileSync(key, nobodyKey);
      chownSync(nobodyKey, 65534, 65534);
      chmodSync(nobodyKey, 0o600);
      const closed = mkdtempSync(join(base, 'closed-')); // root, 0700
      const r = startAs(true, ['--target', join(closed, 'ev'), '--key', nobodyKey]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(
        `stella: --target: cannot inspect output directory ${join(closed, 'ev')}: permission denied (EACCES)`,
      );
      expect(r.stderr).toContain('hint: run as a user that may write there (this process is uid 65534)');
      noStack(r.stderr);
    }, 40_000);

    it('a key this user may not read (EACCES) says so, not "does not exist"', () => {
      const keyDir = mkdtempSync(join(base, 'root-key-'));
      chmodSync(keyDir, 0o755);
      const rootKey = join(keyDir, 'k.pem');
      copyFileSync(key, rootKey);
      chmodSync(rootKey, 0o600);
      const r = startAs(true, ['--target', join(base, 'never'), '--key', rootKey]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(
        `stella: --key: private key ${rootKey} cannot be read by this user (uid 65534)`,
      );
      expect(r.stderr).toContain("hint: run the collector as the key's owner");
    }, 40_000);

    it('--key DIRECTORY and --key /dev/null: a key must be a regular file (no chmod 600 /dev/null)', () => {
      const keyDir = mkdtempSync(join(base, 'keydir-'));
      const d = start(join(base, 'ev-d'), ['--key', keyDir]);
      expect(d.code).toBe(2);
      expect(d.stderr).toContain(`stella: --key: private key ${keyDir} is a directory, not a regular file`);
      hintLine(d.stderr);
      const n = start(join(base, 'ev-n'), ['--key', '/dev/null']);
      expect(n.code).toBe(2);
      expect(n.stderr).toContain(
        'stella: --key: private key /dev/null is a character device, not a regular file',
      );
      expect(n.stderr).not.toContain('chmod 600 /dev/null');
      hintLine(n.stderr);
    }, 40_000);
  },
);

/**
 * `stella signals start` as users run it (bin/stella.js, the launcher) into a
 * fresh directory with a fresh key; `preload(marker)`, if given, is the
 * source of an ES module node loads first (NODE_OPTIONS --import), which
 * can write `marker` to say where the process is.
 */
function launchStart(name: string, args: string[], preload?: (marker: string) => string) {
  const base = mkdtempSync(join(tmpdir(), `stella-${name}-`));
  const key = join(base, 'k.pem');
  expect(stella(['signals', 'keygen', '--out', key]).code).toBe(0);
  const evidence = join(base, 'ev');
  const marker = join(base, 'marker');
  const env = { ...process.env };
  if (preload) {
    const file = join(base, 'preload.mjs');
    writeFileSync(file, preload(marker));
    env.NODE_OPTIONS = `--import=${file}`;
  }
  const child = spawn(
    process.execPath,
    [join(pkg, 'bin/stella.js'), 'signals', 'start', '--target', evidence, '--key', key, ...args],
    { stdio: ['ignore', 'ignore', 'pipe'], env },
  );
  let log = '';
  child.stderr?.on('data', (d: Buffer) => {
    log += d.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once('exit', (code, signal) => r({ code, signal })),
  );
  /** Poll `ready` every 5 ms until it holds or the process has exited. */
  const until = async (ready: () => boolean) => {
    while (!ready() && child.exitCode === null && child.signalCode === null)
      await new Promise((r) => setTimeout(r, 5));
  };
  return { child, evidence, marker, pub: join(base, 'k.pub.pem'), log: () => log, exited, until };
}

describe.runIf(canRunBpf('stella signals start, a signal while starting'))(
  'stella start: SIGTERM while the probes load (outside audit, issue 10)',
  () => {
    it('is logged, exits 0 with a chain that verifies, and the next start is fine (was: exit 143, no log line)', async () => {
      const base = mkdtempSync(join(tmpdir(), 'stella-early-'));
      const key = join(base, 'k.pem');
      expect(stella(['signals', 'keygen', '--out', key]).code).toBe(0);
      const evidence = join(base, 'ev');
      const child = spawn(
        process.execPath,
        [bin, 'signals', 'start', '--target', evidence, '--key', key, '--duration', '60s'],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let log = '';
      child.stderr?.on('data', (d: Buffer) => {
        log += d.toString();
      });
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
        child.once('exit', (code, signal) => r({ code, signal })),
      );
      // The first log line ("config") comes before the preflight and the probe loading.
      while (!log.includes('"msg":"config"') && child.exitCode === null)
        await new Promise((r) => setTimeout(r, 5));
      child.kill('SIGTERM');
      const { code, signal } = await exited;
      expect({ code, signal }, log).toEqual({ code: 0, signal: null });
      const msgs = log
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l).msg as string);
      const early = msgs.indexOf(
        'stop requested before collection started: stopping as soon as the probes are attached',
      );
      expect(early, log).toBeGreaterThan(0);
      expect(msgs.indexOf('collector started'), log).toBeGreaterThan(early);
      expect(msgs.at(-1), log).toBe('collector stopped');
      const pub = join(base, 'k.pub.pem');
      const v = stella(['signals', 'verify-chain', evidence, '--key', pub]);
      expect(v.code, v.stdout + v.stderr).toBe(0);
      // The next start continues the chain, and it still verifies.
      const again = startAs(false, ['--target', evidence, '--key', key]);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).not.toContain('recovered');
      const v2 = stella(['signals', 'verify-chain', evidence, '--key', pub]);
      expect(v2.code, v2.stdout + v2.stderr).toBe(0);
    }, 60_000);

    it('a SIGTERM that arrives while the probes load (the main thread busy) is not lost: the collector stops and seals', async () => {
      const base = mkdtempSync(join(tmpdir(), 'stella-early-load-'));
      const key = join(base, 'k.pem');
      expect(stella(['signals', 'keygen', '--out', key]).code).toBe(0);
      let inWindow = 0;
      // Several moments after the "config" line, while loading and attaching
      // take the main thread; no --duration, so a lost signal means no exit.
      for (const delay of [150, 500, 1000]) {
        const evidence = join(base, `ev-${delay}`);
        const child = spawn(process.execPath, [bin, 'signals', 'start', '--target', evidence, '--key', key], {
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let log = '';
        child.stderr?.on('data', (d: Buffer) => {
          log += d.toString();
        });
        const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
        while (!log.includes('"msg":"config"') && child.exitCode === null)
          await new Promise((r) => setTimeout(r, 5));
        await new Promise((r) => setTimeout(r, delay));
        if (!log.includes('"collector started"')) inWindow++;
        child.kill('SIGTERM');
        const timeout = new Promise<'hung'>((r) => setTimeout(() => r('hung'), 40_000).unref());
        const code = await Promise.race([exited, timeout]);
        if (code === 'hung') child.kill('SIGKILL');
        expect(code, `SIGTERM ${delay} ms after the config line\n${log}`).toBe(0);
        expect(log).toContain('"collector stopped"');
        const v = stella(['signals', 'verify-chain', evidence, '--key', join(base, 'k.pub.pem')]);
        expect(v.code, v.stdout + v.stderr).toBe(0);
      }
      // At least one signal landed before collection started (what this test is about).
      expect(inWindow).toBeGreaterThan(0);
    }, 180_000);

    it('a SIGTERM just before the heap-cap re-exec ends the process with nothing written, never a lost stop (outside audit)', async () => {
      // A preload holds the first image for 1.5 s at its execve: a signal then
      // is one that lands between the launcher's decision and the re-exec.
      // Caught there, it died with the image and the collector ran on.
      const run = launchStart('reexec', ['--duration', '20s'], (marker) =>
        [
          "import { writeFileSync } from 'node:fs';",
          'const execve = process.execve;',
          'process.execve = (...a) => {',
          `  writeFileSync(${JSON.stringify(marker)}, 'x');`,
          '  for (const end = Date.now() + 1500; Date.now() < end; );',
          '  return execve.apply(process, a);',
          '};',
        ].join('\n'),
      );
      await run.until(() => existsSync(run.marker));
      run.child.kill('SIGTERM');
      expect(await run.exited, run.log()).toEqual({ code: null, signal: 'SIGTERM' });
      expect(run.log()).toBe('');
      expect(existsSync(run.evidence)).toBe(false);
    }, 60_000);

    it("SIGHUP (a closed terminal; node drops nohup's ignore) stops and seals like SIGTERM (was: killed, chunk left unsealed)", async () => {
      const run = launchStart('hup', []);
      await run.until(() => run.log().includes('"collector started"'));
      run.child.kill('SIGHUP');
      expect(await run.exited, run.log()).toEqual({ code: 0, signal: null });
      expect(run.log()).toContain('"reason":"SIGHUP"');
      expect(run.log()).toContain('"collector stopped"');
      const v = stella(['signals', 'verify-chain', run.evidence, '--key', run.pub]);
      expect(v.code, v.stdout + v.stderr).toBe(0);
    }, 60_000);

    it('a stop whose log cannot be written (terminal closed: EIO; reader gone: EPIPE) still seals (was: crash, exit 1, chain open)', async () => {
      const run = launchStart('log-gone', []);
      await run.until(() => run.log().includes('"collector started"'));
      // The reader of stderr goes away, as a closed terminal does: every
      // later log write fails.
      run.child.stderr?.destroy();
      run.child.kill('SIGHUP');
      expect(await run.exited).toEqual({ code: 0, signal: null });
      const v = stella(['signals', 'verify-chain', run.evidence, '--key', run.pub]);
      expect(v.code, v.stdout + v.stderr).toBe(0);
      expect(v.stdout).toContain('chain closed');
    }, 60_000);

    it('a stopped collector exits at once, not by an empty event loop (whose teardown made a last-moment SIGTERM a kill, 143)', async () => {
      // The kill itself lands only in a window of milliseconds; what closes it
      // is exiting with process.exit, which never emits 'beforeExit'.
      const run = launchStart('exit-path', ['--duration', '2s'], (marker) =>
        [
          "import { writeFileSync } from 'node:fs';",
          `process.on('beforeExit', () => writeFileSync(${JSON.stringify(marker)}, 'x'));`,
        ].join('\n'),
      );
      expect(await run.exited, run.log()).toEqual({ code: 0, signal: null });
      expect(run.log()).toContain('"collector stopped"');
      expect(existsSync(run.marker)).toBe(false);
    }, 60_000);

    it('a SIGTERM while the `stella` launcher loads the CLI (before the start command exists) is not lost (was: exit 143)', async () => {
      // A preload holds the capped image (after the launcher's re-exec) for
      // 1.5 s while dist/bin.js loads, and says so: a signal then comes while
      // the CLI loads, as on a slow disk or a loaded node, every time.
      const run = launchStart('early-launch', [], (marker) =>
        [
          "import { writeFileSync } from 'node:fs';",
          "import { registerHooks } from 'node:module';",
          'registerHooks({ load(url, context, next) {',
          "  if (url.endsWith('/cli/dist/bin.js') && process.execArgv.some((a) => a.startsWith('--max-old-space-size'))) {",
          `    writeFileSync(${JSON.stringify(marker)}, 'x');`,
          '    for (const end = Date.now() + 1500; Date.now() < end; );',
          '  }',
          '  return next(url, context);',
          '} });',
        ].join('\n'),
      );
      await run.until(() => existsSync(run.marker));
      expect(run.log()).toBe('');
      run.child.kill('SIGTERM');
      const timeout = new Promise<'hung'>((r) => setTimeout(() => r('hung'), 40_000).unref());
      const result = await Promise.race([run.exited, timeout]);
      if (result === 'hung') run.child.kill('SIGKILL');
      expect(result, run.log()).toEqual({ code: 0, signal: null });
      const msgs = run
        .log()
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l).msg as string);
      const early = msgs.indexOf(
        'stop requested before collection started: stopping as soon as the probes are attached',
      );
      expect(early, run.log()).toBeGreaterThanOrEqual(0);
      expect(msgs.indexOf('collector started'), run.log()).toBeGreaterThan(early);
      expect(msgs.at(-1), run.log()).toBe('collector stopped');
      const v = stella(['signals', 'verify-chain', run.evidence, '--key', run.pub]);
      expect(v.code, v.stdout + v.stderr).toBe(0);
    }, 60_000);
  },
);

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
        // Not /etc/passwd: runc reads it first (user lookup), and the dedup folds the image's open into runc's.
        `sleep 0.5; echo x > /tmp/e2e-${process.pid}; cat /tmp/e2e-${process.pid}; sleep 1`,
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
      expect(s.files.map((f: { path: string }) => f.path)).toContain(`/tmp/e2e-${process.pid}`);
      // runc's rootfs set-up (host paths) is not listed as the image's files.
      expect(s.files.some((f: { path: string }) => f.path.startsWith('/run/containerd/'))).toBe(false);
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
