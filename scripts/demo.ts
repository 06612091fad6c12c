/**
 * The README's main job: collect real evidence on this machine for a few
 * seconds while a sample workload runs, then verify the chain and print what
 * the evidence says about the container's image.
 *
 *   bash scripts/bootstrap.sh demo
 *
 * Workload: file opens, an exec and a TLS request (curl → openssl s_server
 * with SNI) on the host, and, when containerd answers, a busybox container
 * built from busybox-static that reads files, runs a program and connects
 * to the TLS server. Everything goes through the real `stella` binary.
 * Output stays in .demo/ (evidence, key, logs) for a look afterwards.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { buildImage, ctrUnavailableReason, importImage } from '../tools/oci-image/ctr.js';
import { repoRoot } from './packages.js';

const demo = join(repoRoot, '.demo');
const evidence = join(demo, 'evidence');
const key = join(demo, 'signals-key.pem');
const pub = join(demo, 'signals-key.pub.pem');
const stella = join(repoRoot, 'packages/cli/dist/bin.js');
const sni = 'demo.stellaops.test';

function step(msg: string): void {
  process.stdout.write(`\n== ${msg}\n`);
}

function cli(args: string[], allowFail = false): number {
  process.stdout.write(`$ stella ${args.join(' ')}\n`);
  const r = spawnSync(process.execPath, [stella, ...args], { stdio: 'inherit' });
  if (r.status !== 0 && !allowFail) throw new Error(`stella ${args[1]} exited ${r.status}`);
  return r.status ?? 1;
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const addr = srv.address();
  await new Promise<void>((r) => srv.close(() => r()));
  if (addr === null || typeof addr === 'string') throw new Error('no free port');
  return addr.port;
}

function waitForLog(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(
      () => reject(new Error(`collector did not log ${pattern} in ${timeoutMs} ms:\n${buf}`)),
      timeoutMs,
    );
    child.stderr?.on('data', (d: Buffer) => {
      buf += d.toString();
      process.stderr.write(d);
      if (pattern.test(buf)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`collector exited (${code}) before starting:\n${buf}`));
    });
  });
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('demo: tracing needs root (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN); run it as root\n');
    process.exit(3);
  }
  rmSync(demo, { recursive: true, force: true });
  mkdirSync(demo, { recursive: true });

  step('a signing key for this demo');
  cli(['signals', 'keygen', '--out', key]);

  step('a local TLS server (openssl s_server) with a self-signed certificate');
  const cert = join(demo, 'tls-cert.pem');
  const certKey = join(demo, 'tls-key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-subj',
      `/CN=${sni}`,
      '-addext',
      `subjectAltName=DNS:${sni}`,
      '-keyout',
      certKey,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  const port = await freePort();
  const server = spawn(
    'openssl',
    ['s_server', '-quiet', '-www', '-accept', `127.0.0.1:${port}`, '-cert', cert, '-key', certKey],
    {
      stdio: 'ignore',
    },
  );

  let image: ReturnType<typeof buildImage> | undefined;
  const noCtr = ctrUnavailableReason();
  if (noCtr === undefined) {
    step('a busybox image built locally from busybox-static, imported into containerd');
    image = buildImage({ ref: 'docker.io/stellaops/demo-busybox:1' });
    importImage(image, 'stella-demo');
    process.stdout.write(
      `image ${image.ref}\n  manifest ${image.manifestDigest}\n  config   ${image.configDigest}\n`,
    );
  } else {
    process.stdout.write(`\n(no container part: ${noCtr})\n`);
  }

  step('collect');
  const collector = spawn(
    process.execPath,
    [stella, 'signals', 'start', '--target', evidence, '--key', key, '--set', 'status_interval_seconds=2'],
    { stdio: ['ignore', 'inherit', 'pipe'] },
  );
  const exited = new Promise<number | null>((r) => collector.once('exit', (code) => r(code)));
  await waitForLog(collector, /"msg":"collector started"/, 30_000);

  step('workload');
  execFileSync('cat', ['/etc/os-release'], { stdio: 'ignore' });
  execFileSync('sh', ['-c', 'ls /usr/lib > /dev/null'], { stdio: 'ignore' });
  const curl = spawnSync(
    'curl',
    [
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '--cacert',
      cert,
      '--resolve',
      `${sni}:${port}:127.0.0.1`,
      `https://${sni}:${port}/`,
    ],
    {
      encoding: 'utf8',
    },
  );
  process.stdout.write(`host: cat, ls, curl https://${sni}:${port}/ → HTTP ${curl.stdout}\n`);
  if (image) {
    const id = `stella-demo-${process.pid}`;
    // The container lives about a second, as a real workload would: the
    // collector resolves its cgroup through containerd while it runs.
    const r = spawnSync(
      'ctr',
      [
        '-n',
        'stella-demo',
        'run',
        '--rm',
        '--net-host',
        image.ref,
        id,
        '/bin/sh',
        '-c',
        `sleep 0.5; cat /etc/passwd > /dev/null; ls /bin > /dev/null; echo | nc 127.0.0.1 ${port} > /dev/null 2>&1; sleep 0.5`,
      ],
      { encoding: 'utf8' },
    );
    process.stdout.write(
      `container ${id}: cat /etc/passwd, ls /bin, nc 127.0.0.1:${port} (exit ${r.status})\n`,
    );
  }
  await new Promise((r) => setTimeout(r, 1500));

  step('stop: SIGTERM drains, seals the last chunk and the end-of-stream statement');
  collector.kill('SIGTERM');
  const code = await exited;
  server.kill();
  if (code !== 0) throw new Error(`stella signals start exited ${code}`);

  step('verify the chain offline, trusting only the public key');
  cli(['signals', 'verify-chain', evidence, '--key', pub]);

  if (image) {
    step(`what the evidence says image ${image.manifestDigest} did`);
    cli(['signals', 'inspect', image.manifestDigest, '--target', evidence, '--key', pub]);
  }
  writeFileSync(
    join(demo, 'README'),
    'Output of `bash scripts/bootstrap.sh demo`: evidence/, the demo key, TLS cert.\n',
  );
  process.stdout.write(`\nEvidence, key and certificate are in ${demo}\n`);
}

main().catch((e: Error) => {
  process.stderr.write(`demo failed: ${e.message}\n`);
  process.exit(1);
});
