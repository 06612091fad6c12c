/**
 * Test helpers around tools/oci-image/build.sh and containerd's `ctr`:
 * build the busybox image once, import it, run a container and learn its
 * init pid, cgroup path and bpf cgroup id. Used by the tests of several
 * packages (import with a relative path; no dependencies beyond Node).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** An image archive built by build.sh and its digests. */
export interface BuiltImage {
  /** The archive: OCI layout + docker-save manifest in one tar. */
  readonly tar: string;
  readonly ref: string;
  readonly manifestDigest: string;
  readonly configDigest: string;
  readonly layerDigest: string;
}

/** Build options: extra files (`src` on the host → `dst` in the image) and the image reference. */
export interface BuildOptions {
  readonly ref?: string;
  readonly add?: readonly { readonly src: string; readonly dst: string }[];
  /** The image's default command (a CRI pod sandbox runs it). */
  readonly cmd?: readonly string[];
  /** Output directory; default a fresh temp dir. */
  readonly outDir?: string;
}

/** Run build.sh and return the archive with its digests. */
export function buildImage(options: BuildOptions = {}): BuiltImage {
  const out = options.outDir ?? mkdtempSync(join(tmpdir(), 'stella-oci-'));
  const args = [join(here, 'build.sh'), out];
  if (options.ref) args.push('--ref', options.ref);
  if (options.cmd) args.push('--cmd', JSON.stringify(options.cmd));
  for (const a of options.add ?? []) args.push('--add', `${a.src}:${a.dst}`);
  execFileSync('bash', args, { stdio: ['ignore', 'ignore', 'inherit'] });
  const meta = JSON.parse(readFileSync(join(out, 'image.json'), 'utf8')) as Omit<BuiltImage, 'tar'>;
  return { tar: join(out, 'image.tar'), ...meta };
}

/** Why ctr-based tests cannot run here, or undefined when containerd answers. */
export function ctrUnavailableReason(): string | undefined {
  // tools/kernel-vm/guest.sh sets it: the VM runs the host's binaries but no daemons.
  const vm = process.env.STELLA_KERNEL_VM;
  if (vm) return `no container runtime in the kernel VM (${vm})`;
  if (process.getuid?.() !== 0) return 'needs root to run containers';
  const r = spawnSync('ctr', ['version'], { encoding: 'utf8', timeout: 10_000 });
  if (r.error) return `'ctr' is not installed (apt-get install containerd): ${r.error.message}`;
  if (r.status !== 0) {
    return `containerd is not answering (${r.stderr.trim().split('\n').pop()}); start it: nohup containerd >/var/log/stella-containerd.log 2>&1 &`;
  }
  return undefined;
}

/** `ctr -n <namespace> image import` of a built archive. */
export function importImage(image: BuiltImage, namespace = 'default'): void {
  execFileSync('ctr', ['-n', namespace, 'image', 'import', '--all-platforms', image.tar], {
    stdio: 'ignore',
  });
}

/** The cgroup v2 mount: /sys/fs/cgroup when unified, /sys/fs/cgroup/unified on hybrid hosts. */
export function cgroupV2Root(): string {
  return existsSync('/sys/fs/cgroup/cgroup.controllers') ? '/sys/fs/cgroup' : '/sys/fs/cgroup/unified';
}

/** A process's cgroup v2 path (the `0::` line of /proc/<pid>/cgroup). */
export function cgroupPathOf(pid: number): string {
  const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('0::'));
  if (line === undefined) throw new Error(`/proc/${pid}/cgroup has no cgroup v2 line`);
  return line.slice(3);
}

/** The bpf cgroup id of a process: the inode of its cgroup v2 directory. */
export function cgroupIdOf(pid: number): bigint {
  return statSync(join(cgroupV2Root(), cgroupPathOf(pid)), { bigint: true }).ino;
}

/** A running `ctr` container. */
export interface CtrContainer {
  readonly id: string;
  readonly namespace: string;
  /** Init pid on the host. */
  readonly pid: number;
  readonly cgroupPath: string;
  readonly cgroupId: bigint;
  /** `ctr task exec` a command in the container; returns its stdout. */
  exec(args: readonly string[]): string;
  /** Kill the task and delete the container. Idempotent. */
  stop(): void;
}

/** Options of {@link runCtr}. */
export interface RunCtrOptions {
  readonly namespace: string;
  readonly image: BuiltImage;
  readonly id?: string;
  /** Command; default `sleep 3600`. */
  readonly args?: readonly string[];
  /** `ctr run --cgroup`, e.g. a CRI-shaped `/kubepods/besteffort/pod<uid>/<id>`. */
  readonly cgroup?: string;
}

let seq = 0;

/** `ctr run -d` a container of `image` and wait until its task has a pid. */
export function runCtr(options: RunCtrOptions): CtrContainer {
  const ns = options.namespace;
  const id = options.id ?? `stella-${process.pid}-${++seq}`;
  const args = ['-n', ns, 'run', '-d'];
  if (options.cgroup) args.push('--cgroup', options.cgroup);
  args.push(options.image.ref, id, ...(options.args ?? ['/bin/sleep', '3600']));
  execFileSync('ctr', args, { stdio: ['ignore', 'ignore', 'inherit'] });
  let pid = 0;
  for (let i = 0; i < 100 && pid === 0; i++) {
    const out = execFileSync('ctr', ['-n', ns, 'task', 'ls'], { encoding: 'utf8' });
    const row = out.split('\n').find((l) => l.split(/\s+/)[0] === id);
    pid = Number(row?.split(/\s+/)[1] ?? 0);
    if (pid === 0) execFileSync('sleep', ['0.05']);
  }
  if (pid === 0) throw new Error(`ctr container ${id} has no running task`);
  const cgroupPath = cgroupPathOf(pid);
  let stopped = false;
  return {
    id,
    namespace: ns,
    pid,
    cgroupPath,
    cgroupId: cgroupIdOf(pid),
    exec(cmd) {
      return execFileSync('ctr', ['-n', ns, 'task', 'exec', '--exec-id', `x${++seq}`, id, ...cmd], {
        encoding: 'utf8',
      });
    },
    stop() {
      if (stopped) return;
      stopped = true;
      spawnSync('ctr', ['-n', ns, 'task', 'kill', '-s', 'SIGKILL', id], { stdio: 'ignore' });
      for (let i = 0; i < 50; i++) {
        const r = spawnSync('ctr', ['-n', ns, 'task', 'rm', '-f', id], { stdio: 'ignore' });
        if (r.status === 0) break;
        execFileSync('sleep', ['0.1']);
      }
      spawnSync('ctr', ['-n', ns, 'container', 'rm', id], { stdio: 'ignore' });
    },
  };
}
