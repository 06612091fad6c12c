/**
 * Start private dockerd and podman API services for tests: each gets its own
 * data root and socket in a temp dir, no bridge or iptables, and is stopped
 * (its own pid only) with its containers at the end.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A running private daemon. */
export interface Daemon {
  /** API socket path. */
  readonly socket: string;
  /** Run the daemon's CLI against it; returns stdout (trimmed). */
  cli(args: readonly string[]): string;
  /** Remove its containers, stop it, delete its data. Idempotent. */
  stop(): Promise<void>;
  /** The daemon's log, for failure messages. */
  log(): string;
}

async function waitSocket(
  socket: string,
  child: ChildProcess,
  probe: () => boolean,
  logFile: string,
): Promise<void> {
  const end = Date.now() + 30_000;
  while (Date.now() < end) {
    if (child.exitCode !== null) throw new Error(`daemon exited (${child.exitCode}): ${tail(logFile)}`);
    if (existsSync(socket) && probe()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`daemon socket ${socket} did not answer within 30 s: ${tail(logFile)}`);
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-8).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Unmount everything mounted under `dir` (deepest first; stacked mounts need several rounds). */
function unmountUnder(dir: string): void {
  for (let round = 0; round < 5; round++) {
    const mounts = readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[1] ?? '')
      .filter((m) => m === dir || m.startsWith(`${dir}/`))
      .sort((a, b) => b.length - a.length);
    if (mounts.length === 0) return;
    // A mount still busy (a conmon or a shim that has not exited yet) is
    // detached lazily in the later rounds, so the directory can be removed.
    const flags = round < 2 ? [] : ['-l'];
    for (const m of mounts) spawnSync('umount', [...flags, m], { stdio: 'ignore' });
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(t);
}

/** Why dockerd tests cannot run, or undefined. */
export function dockerdUnavailableReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to run dockerd';
  for (const cmd of ['dockerd', 'docker']) {
    if (spawnSync('sh', ['-c', `command -v ${cmd}`]).status !== 0)
      return `'${cmd}' is not installed (apt-get install docker.io)`;
  }
  if (!existsSync('/run/containerd/containerd.sock'))
    return 'containerd is not running (dockerd here uses the system containerd)';
  return undefined;
}

/**
 * Start dockerd with a temp data root and socket, on the system containerd
 * (namespace `moby`), cgroupfs driver, no networking set-up.
 */
export async function startDockerd(): Promise<Daemon> {
  const dir = mkdtempSync(join(tmpdir(), 'stella-dockerd-'));
  const socket = join(dir, 'docker.sock');
  const logFile = join(dir, 'dockerd.log');
  const { openSync } = await import('node:fs');
  const out = openSync(logFile, 'a');
  // The docker.io client (API 1.41) matches this dockerd; a newer client elsewhere on PATH may not.
  const docker = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
  const child = spawn(
    'dockerd',
    [
      '--data-root',
      join(dir, 'data'),
      '--exec-root',
      join(dir, 'exec'),
      '--pidfile',
      join(dir, 'dockerd.pid'),
      '-H',
      `unix://${socket}`,
      '--bridge=none',
      '--iptables=false',
      '--ip-masq=false',
      '--ip6tables=false',
      '--containerd=/run/containerd/containerd.sock',
      '--exec-opt',
      'native.cgroupdriver=cgroupfs',
    ],
    { stdio: ['ignore', out, out] },
  );
  const cli = (args: readonly string[]) =>
    execFileSync(docker, ['-H', `unix://${socket}`, ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    }).trim();
  await waitSocket(
    socket,
    child,
    () => spawnSync(docker, ['-H', `unix://${socket}`, 'version'], { stdio: 'ignore' }).status === 0,
    logFile,
  );
  let stopped = false;
  return {
    socket,
    cli,
    log: () => tail(logFile),
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        const ids = cli(['ps', '-aq']).split('\n').filter(Boolean);
        if (ids.length > 0) cli(['rm', '-f', ...ids]);
      } catch {
        // daemon already gone
      }
      await stopChild(child);
      unmountUnder(dir);
      rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
    },
  };
}

/** Why podman tests cannot run, or undefined. */
export function podmanUnavailableReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to run podman with runc';
  if (spawnSync('sh', ['-c', 'command -v podman && command -v runc']).status !== 0) {
    return "'podman' or 'runc' is not installed (apt-get install podman runc)";
  }
  return undefined;
}

/** Hard limits of this process: podman's defaults (1048576) exceed them and root lacks CAP_SYS_RESOURCE here. */
function hardLimit(name: string): number {
  const line = readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(name));
  const hard = line?.trim().split(/\s{2,}/)[2];
  return hard === undefined || hard === 'unlimited' ? 1_048_576 : Number(hard);
}

/** `podman run` flags this machine needs: runc (crun refuses the hybrid cgroup layout) and rlimits within ours. */
export function podmanRunFlags(): string[] {
  const nofile = Math.min(hardLimit('Max open files'), 65536);
  const nproc = Math.min(hardLimit('Max processes'), 4096);
  return [
    '--network',
    'none',
    '--ulimit',
    `nofile=${nofile}:${nofile}`,
    '--ulimit',
    `nproc=${nproc}:${nproc}`,
  ];
}

/**
 * Start `podman system service` on a temp socket with temp storage, runc,
 * the cgroupfs manager (no systemd here) and file events.
 */
export async function startPodman(): Promise<Daemon> {
  const dir = mkdtempSync(join(tmpdir(), 'stella-podman-'));
  mkdirSync(join(dir, 'tmp'));
  const socket = join(dir, 'podman.sock');
  const logFile = join(dir, 'podman.log');
  const global = [
    '--root',
    join(dir, 'root'),
    '--runroot',
    join(dir, 'runroot'),
    '--tmpdir',
    join(dir, 'tmp'),
    '--runtime',
    'runc',
    '--cgroup-manager',
    'cgroupfs',
    '--events-backend',
    'file',
  ];
  const { openSync } = await import('node:fs');
  const out = openSync(logFile, 'a');
  const child = spawn('podman', [...global, 'system', 'service', '--time=0', `unix://${socket}`], {
    stdio: ['ignore', out, out],
  });
  const cli = (args: readonly string[]) =>
    execFileSync('podman', [...global, ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    }).trim();
  await waitSocket(socket, child, () => true, logFile);
  let stopped = false;
  return {
    socket,
    cli,
    log: () => tail(logFile),
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        cli(['rm', '-a', '-f', '-t', '0']);
      } catch {
        // nothing to remove
      }
      try {
        cli(['rmi', '-a', '-f']);
      } catch {
        // no images
      }
      await stopChild(child);
      // Not `podman system reset`: that also deletes host-wide network configs other users may rely on.
      unmountUnder(dir);
      rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
    },
  };
}
