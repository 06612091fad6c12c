/**
 * Plays kubelet against a real containerd CRI plugin: a private containerd
 * (own root, state and socket in a temp dir; the shared one stays untouched)
 * configured for this machine, and a minimal CRI gRPC client.
 *
 * Facts measured here: the pod sandbox needs `restrict_oom_score_adj = true`
 * because root lacks CAP_SYS_RESOURCE; no registry is reachable, so the
 * sandbox ("pause") image is tools/oci-image's busybox with a sleeping
 * command, imported into `k8s.io`; pods use the host network (no CNI).
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { BuiltImage } from '../../../tools/oci-image/ctr.js';

const here = dirname(fileURLToPath(import.meta.url));

/** A private containerd with the CRI plugin. */
export interface CriContainerd {
  readonly socket: string;
  /** `ctr --address <socket> -n k8s.io …` */
  ctr(args: readonly string[]): string;
  /**
   * Stop containerd (SIGTERM, as a service restart does), leave it down
   * `downMs`, and start it again on the same socket and state.
   */
  restart(downMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export const PAUSE_REF = 'docker.io/stellaops/pause:test';

/** Start containerd with a CRI config for this host; imports `images` into k8s.io. */
export async function startCriContainerd(images: readonly BuiltImage[]): Promise<CriContainerd> {
  const dir = mkdtempSync(join(tmpdir(), 'stella-cri-'));
  mkdirSync(join(dir, 'cni'));
  const socket = join(dir, 'containerd.sock');
  writeFileSync(
    join(dir, 'config.toml'),
    [
      'version = 2',
      `root = "${dir}/root"`,
      `state = "${dir}/state"`,
      '[grpc]',
      `  address = "${socket}"`,
      '[ttrpc]',
      `  address = "${socket}.ttrpc"`,
      '[plugins]',
      '  [plugins."io.containerd.grpc.v1.cri"]',
      `    sandbox_image = "${PAUSE_REF}"`,
      '    restrict_oom_score_adj = true',
      '    [plugins."io.containerd.grpc.v1.cri".cni]',
      '      bin_dir = "/usr/lib/cni"',
      `      conf_dir = "${dir}/cni"`,
      '  [plugins."io.containerd.internal.v1.opt"]',
      `    path = "${dir}/opt"`,
      '',
    ].join('\n'),
  );
  const log = openSync(join(dir, 'containerd.log'), 'a');
  const launch = (): ChildProcess =>
    spawn('containerd', ['--config', join(dir, 'config.toml')], { stdio: ['ignore', log, log] });
  let child = launch();
  const ctr = (args: readonly string[]) =>
    execFileSync('ctr', ['--address', socket, '-n', 'k8s.io', ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  const answering = async () => {
    const end = Date.now() + 30_000;
    while (
      !(
        existsSync(socket) &&
        spawnSync('ctr', ['--address', socket, 'version'], { stdio: 'ignore' }).status === 0
      )
    ) {
      if (child.exitCode !== null || Date.now() > end) {
        throw new Error(
          `private containerd did not start: ${readFileSync(join(dir, 'containerd.log'), 'utf8').slice(-2000)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await answering();
  for (const img of images) ctr(['image', 'import', img.tar]);
  return {
    socket,
    ctr,
    async restart(downMs = 0) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      await new Promise((r) => setTimeout(r, downMs));
      child = launch();
      await answering();
    },
    async stop() {
      for (const id of ctr(['task', 'ls', '-q']).split('\n').filter(Boolean)) {
        spawnSync('ctr', ['--address', socket, '-n', 'k8s.io', 'task', 'kill', '-s', 'SIGKILL', id], {
          stdio: 'ignore',
        });
      }
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      // Shims outlive containerd; they exit once their tasks are killed. Unmount rootfs left behind.
      const mounts = readFileSync('/proc/self/mounts', 'utf8')
        .split('\n')
        .map((l) => l.split(' ')[1] ?? '')
        .filter((m) => m.startsWith(dir))
        .reverse();
      for (const m of mounts) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

type Unary = (req: unknown, cb: (err: grpc.ServiceError | null, res: Record<string, string>) => void) => void;

/** A minimal CRI RuntimeService client (test-only proto in fixtures/cri). */
export class CriClient {
  readonly #client: grpc.Client & Record<string, Unary>;

  constructor(socket: string) {
    const def = protoLoader.loadSync('cri/api.proto', {
      includeDirs: [join(here, 'fixtures')],
      keepCase: true,
      enums: String,
      defaults: true,
    });
    // biome-ignore lint/suspicious/noExplicitAny: generated package object
    const pkg = grpc.loadPackageDefinition(def) as any;
    this.#client = new pkg.runtime.v1.RuntimeService(`unix://${socket}`, grpc.credentials.createInsecure());
  }

  call(method: string, req: unknown): Promise<Record<string, string>> {
    return new Promise((resolve, reject) => {
      const fn = this.#client[method]!;
      fn.call(this.#client, req, (err, res) =>
        err ? reject(new Error(`CRI ${method}: ${err.details}`)) : resolve(res),
      );
    });
  }

  close(): void {
    this.#client.close();
  }
}
