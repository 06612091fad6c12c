import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  ContainerTracker,
  type ContainerTrackerOptions,
  type Enriched,
  EnrichmentStage,
} from '@stellaops/enrich';
import { openProbeSet, type ProbeEvent } from '@stellaops/probes';
import { canRunBpf, gate } from '@stellaops/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BuiltImage,
  buildImage,
  ctrUnavailableReason,
  importImage,
} from '../../../tools/oci-image/ctr.js';
import {
  type Daemon,
  dockerdUnavailableReason,
  podmanRunFlags,
  podmanUnavailableReason,
  startDockerd,
  startPodman,
} from '../../../tools/oci-image/daemons.js';
import { CriClient, type CriContainerd, PAUSE_REF, startCriContainerd } from './cri-harness.js';
import { waitFor } from './helpers.js';

// Short-lived containers (issue 12): containers that live ~5 ms (one failed
// open and exit), 50 ms, 0.2 s and 1 s, run and removed by each runtime
// (`ctr run --rm`, `docker run --rm`, `podman run --rm`, CRI with the
// container removed right after it exits), one after another and in a burst.
// Each opens a marker path of its own; the real probes (with cgroup_mkdir)
// feed the tracker and the enrichment stage as collect() does. Every marker
// record must name its container with the image digests the runtime itself
// reports, never go out as `host`; a host process writing files beside them
// must never be attributed to a container.
//
// The matrix is small for CI; STELLA_SHORT_LIVED_PER_CELL (containers per
// runtime and lifetime, default 4) and STELLA_SHORT_LIVED_BURST (default 10)
// make it bigger. docs/probe-reference.md ("Short-lived containers") has the
// numbers measured.

const PER_CELL = Number(process.env.STELLA_SHORT_LIVED_PER_CELL ?? 4);
const BURST = Number(process.env.STELLA_SHORT_LIVED_BURST ?? 10);
/** Seconds each container sleeps after its marker open; 0 is the marker open alone (~5 ms). */
const LIFETIMES = [0, 0.05, 0.2, 1];
const MARK = '/stella-mark-';
const run = `${process.pid}-${Date.now().toString(36)}`;

const what = 'short-lived container attribution (probes + enrich)';
const kernelOk = canRunBpf(what);

/** What a container must be attributed to. */
interface Expected {
  readonly id: string;
  readonly runtime: string;
  readonly imageManifestDigest: string | undefined;
  readonly imageConfigDigest: string;
}

/** The records of one harness: marker records by tag, the host loop's records. */
class Harness {
  tracker!: ContainerTracker;
  probes!: ReturnType<typeof openProbeSet>;
  pump!: Promise<void>;
  readonly marks = new Map<string, Enriched<ProbeEvent>[]>();
  readonly host: Enriched<ProbeEvent>[] = [];
  readonly expected = new Map<string, Expected>();
  readonly hostDir = join(tmpdir(), `stella-short-host-${run}-${Math.random().toString(36).slice(2)}`);
  #loop: ChildProcess | undefined;

  async start(options: ContainerTrackerOptions): Promise<void> {
    mkdirSync(this.hostDir, { recursive: true });
    this.tracker = await ContainerTracker.create(options);
    this.probes = openProbeSet({
      probes: ['file_open', 'exec', 'cgroup_mkdir'],
      onCgroupMkdir: (e) => this.tracker.learnCgroup(e.id, e.path),
    });
    const stage = new EnrichmentStage(this.tracker);
    this.pump = (async () => {
      for await (const batch of stage.run(this.probes)) {
        for (const e of batch) {
          if (e.kind !== 'file_open') continue;
          const p = e.path.toString();
          if (p.startsWith(MARK)) {
            const tag = p.slice(MARK.length);
            const list = this.marks.get(tag) ?? [];
            list.push(e);
            this.marks.set(tag, list);
          } else if (p.startsWith(this.hostDir)) this.host.push(e);
        }
      }
    })();
    // Host processes beside the containers: a shell writing a new file every few ms.
    this.#loop = spawn(
      'sh',
      ['-c', `i=0; while :; do i=$((i+1)); echo x > "${this.hostDir}/f$i"; sleep 0.005; done`],
      { stdio: 'ignore' },
    );
  }

  /** Wait until the marker record of every started container is through the stage. */
  async settle(): Promise<void> {
    for (const tag of this.expected.keys()) {
      await waitFor(`the marker record of ${tag}`, () => (this.marks.has(tag) ? true : undefined), 30_000);
    }
  }

  /** Attributed (right id and digests), unknown (with a reason), host, wrong, per the expectations. */
  tally(): { total: number; attributed: number; unknown: string[]; host: string[]; wrong: string[] } {
    const out = {
      total: 0,
      attributed: 0,
      unknown: [] as string[],
      host: [] as string[],
      wrong: [] as string[],
    };
    for (const [tag, exp] of this.expected) {
      for (const e of this.marks.get(tag) ?? []) {
        out.total++;
        const r = e.enrichment;
        if (r.status === 'host') out.host.push(`${tag}: ${r.cgroupPath}`);
        else if (r.status === 'unknown') out.unknown.push(`${tag}: ${r.reason}`);
        else if (
          r.container.id === exp.id &&
          r.container.runtime === exp.runtime &&
          r.container.imageConfigDigest === exp.imageConfigDigest &&
          r.container.imageManifestDigest === exp.imageManifestDigest
        )
          out.attributed++;
        else out.wrong.push(`${tag}: ${JSON.stringify(r.container)}`);
      }
    }
    return out;
  }

  /** The host loop's records that were attributed to a container. */
  hostAttributed(): string[] {
    return this.host
      .filter((e) => e.enrichment.status === 'resolved')
      .map((e) => `pid ${e.pid} ${e.comm.toString()} ${JSON.stringify(e.enrichment)}`);
  }

  async stop(): Promise<void> {
    this.#loop?.kill('SIGKILL');
    await this.probes?.close();
    await this.pump?.catch(() => undefined);
    this.tracker?.close();
    rmSync(this.hostDir, { recursive: true, force: true });
  }
}

/** Run a command to its end; rejects with its stderr on failure. */
function runAsync(cmd: string, args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}: ${err.slice(-500)}`)),
    );
  });
}

/** The command each container runs: its marker open, then its lifetime. */
function script(tag: string, seconds: number): string[] {
  const open = `cat ${MARK}${tag} 2>/dev/null`;
  return ['/bin/sh', '-c', seconds === 0 ? `${open}; exit 0` : `${open}; exec sleep ${seconds}`];
}

/** The matrix: PER_CELL sequential containers per lifetime, then a burst of BURST at once. */
async function matrix(start: (tag: string, seconds: number) => Promise<void>, h: Harness): Promise<void> {
  let n = 0;
  for (const s of LIFETIMES) {
    for (let i = 0; i < PER_CELL; i++) await start(`${run}-s${n++}`, s);
  }
  await Promise.all(
    Array.from({ length: BURST }, (_, i) => start(`${run}-b${n++}`, LIFETIMES[i % LIFETIMES.length]!)),
  );
  await h.settle();
}

function report(name: string, h: Harness): void {
  const t = h.tally();
  console.log(
    `${name}: ${t.attributed}/${t.total} attributed (${PER_CELL} per lifetime x ${LIFETIMES.length} + burst ${BURST}); unknown ${t.unknown.length}, host ${t.host.length}, wrong ${t.wrong.length}; host-loop records ${h.host.length}, attributed to a container ${h.hostAttributed().length}`,
  );
  expect(t.host, 'container records written as host').toEqual([]);
  expect(t.wrong, 'container records attributed to the wrong container or digests').toEqual([]);
  expect(t.total).toBeGreaterThanOrEqual(h.expected.size);
  expect(t.attributed / t.total, `unknown: ${t.unknown.slice(0, 5).join('; ')}`).toBeGreaterThanOrEqual(0.99);
  expect(h.host.length, 'the host loop wrote files').toBeGreaterThan(0);
  expect(h.hostAttributed(), 'host records attributed to a container').toEqual([]);
}

let image: BuiltImage;
const images: string[] = [];
function theImage(): BuiltImage {
  if (!image) {
    image = buildImage();
    images.push(dirname(image.tar));
  }
  return image;
}

afterAll(() => {
  for (const d of images) rmSync(d, { recursive: true, force: true });
});

describe.runIf(kernelOk && gate(`${what}: ctr`, ctrUnavailableReason()))('ctr run --rm', () => {
  const h = new Harness();
  const ns = `stella-short-${run}`;
  beforeAll(async () => {
    importImage(theImage(), ns);
    await h.start({
      containerd: { socket: '/run/containerd/containerd.sock' },
      docker: false,
      podman: false,
      crio: false,
    });
  }, 120_000);
  afterAll(async () => {
    await h.stop();
    spawnSync('ctr', ['-n', ns, 'image', 'rm', image.ref], { stdio: 'ignore' });
    for (let i = 0; i < 30; i++) {
      if (spawnSync('ctr', ['namespaces', 'rm', ns], { stdio: 'ignore' }).status === 0) break;
      spawnSync('sleep', ['0.2']);
    }
  }, 60_000);

  it('attributes every container, however short, with its id and digests; host records stay host', async () => {
    await matrix(async (tag, s) => {
      const id = `short-${tag}`;
      h.expected.set(tag, {
        id,
        runtime: 'containerd',
        imageManifestDigest: image.manifestDigest,
        imageConfigDigest: image.configDigest,
      });
      await runAsync('ctr', ['-n', ns, 'run', '--rm', image.ref, id, ...script(tag, s)]);
    }, h);
    report('ctr run --rm', h);
  }, 240_000);
});

describe.runIf(kernelOk && gate(`${what}: docker`, dockerdUnavailableReason()))('docker run --rm', () => {
  const h = new Harness();
  let dockerd: Daemon;
  const cids = join(tmpdir(), `stella-short-cid-${run}-docker`);
  beforeAll(async () => {
    dockerd = await startDockerd();
    dockerd.cli(['load', '-i', theImage().tar]);
    mkdirSync(cids, { recursive: true });
    await h.start({ docker: { socket: dockerd.socket }, containerd: false, podman: false, crio: false });
  }, 120_000);
  afterAll(async () => {
    await h.stop();
    await dockerd?.stop();
    rmSync(cids, { recursive: true, force: true });
  }, 60_000);

  it('attributes every container, however short, with its id and digests; host records stay host', async () => {
    // What docker itself says about the image: its id is the config digest; a loaded image has no repo digest.
    const configDigest = dockerd.cli(['image', 'inspect', '-f', '{{.Id}}', image.ref]);
    expect(dockerd.cli(['image', 'inspect', '-f', '{{len .RepoDigests}}', image.ref])).toBe('0');
    const docker = existsDocker();
    await matrix(async (tag, s) => {
      const cidfile = join(cids, tag);
      await runAsync(docker, [
        '-H',
        `unix://${dockerd.socket}`,
        'run',
        '--rm',
        '--network',
        'none',
        '--cidfile',
        cidfile,
        image.ref,
        ...script(tag, s),
      ]);
      h.expected.set(tag, {
        id: readFileSync(cidfile, 'utf8').trim(),
        runtime: 'docker',
        imageManifestDigest: undefined,
        imageConfigDigest: configDigest,
      });
    }, h);
    report('docker run --rm', h);
  }, 240_000);
});

function existsDocker(): string {
  return spawnSync('test', ['-x', '/usr/bin/docker']).status === 0 ? '/usr/bin/docker' : 'docker';
}

describe.runIf(kernelOk && gate(`${what}: podman`, podmanUnavailableReason()))('podman run --rm', () => {
  const h = new Harness();
  let podman: Daemon;
  const cids = join(tmpdir(), `stella-short-cid-${run}-podman`);
  beforeAll(async () => {
    podman = await startPodman();
    podman.cli(['load', '-i', theImage().tar]);
    mkdirSync(cids, { recursive: true });
    await h.start({ podman: { socket: podman.socket }, containerd: false, docker: false, crio: false });
  }, 120_000);
  afterAll(async () => {
    await h.stop();
    await podman?.stop();
    rmSync(cids, { recursive: true, force: true });
  }, 60_000);

  it('attributes every container, however short, with its id and digests; host records stay host', async () => {
    // What podman itself says about the image.
    const id = podman.cli(['image', 'inspect', '-f', '{{.Id}}', image.ref]);
    const digest = podman.cli(['image', 'inspect', '-f', '{{.Digest}}', image.ref]);
    await matrix(async (tag, s) => {
      const cidfile = join(cids, tag);
      await runAsync('podman', [
        '--remote',
        '--url',
        `unix://${podman.socket}`,
        'run',
        '--rm',
        ...podmanRunFlags(),
        '--cidfile',
        cidfile,
        image.ref,
        ...script(tag, s),
      ]);
      h.expected.set(tag, {
        id: readFileSync(cidfile, 'utf8').trim(),
        runtime: 'podman',
        imageManifestDigest: digest,
        imageConfigDigest: id.startsWith('sha256:') ? id : `sha256:${id}`,
      });
    }, h);
    report('podman run --rm', h);
  }, 240_000);
});

function criReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to run containerd';
  if (spawnSync('sh', ['-c', 'command -v containerd && command -v containerd-shim-runc-v2']).status !== 0) {
    return 'containerd is not installed (apt-get install containerd)';
  }
  return undefined;
}

describe.runIf(kernelOk && gate(`${what}: CRI`, criReason()))(
  'CRI, container removed right after exit',
  () => {
    const h = new Harness();
    let cri: CriContainerd;
    let client: CriClient;
    let podId: string;
    const podUid = `5c0ffee0-${run.slice(-4).padStart(4, '0')}-4e8a-9b7c-1d2e3f4a5b6c`.replace(
      /[^0-9a-f-]/g,
      'a',
    );
    const sandboxConfig = {
      metadata: { name: `short-${run}`, uid: podUid, namespace: 'short', attempt: 0 },
      labels: { 'io.kubernetes.pod.name': `short-${run}`, 'io.kubernetes.pod.namespace': 'short' },
      linux: {
        cgroup_parent: `/kubepods/besteffort/pod${podUid}`,
        security_context: { namespace_options: { network: 'NODE', pid: 'CONTAINER', ipc: 'POD' } },
      },
    };
    beforeAll(async () => {
      const pause = buildImage({ ref: PAUSE_REF, cmd: ['/bin/sleep', '2147483647'] });
      images.push(dirname(pause.tar));
      cri = await startCriContainerd([pause, theImage()]);
      client = new CriClient(cri.socket);
      await h.start({ containerd: { socket: cri.socket }, docker: false, podman: false, crio: false });
      ({ pod_sandbox_id: podId } = (await client.call('RunPodSandbox', { config: sandboxConfig })) as {
        pod_sandbox_id: string;
      });
    }, 120_000);
    afterAll(async () => {
      await h.stop();
      if (podId) {
        await client.call('StopPodSandbox', { pod_sandbox_id: podId }).catch(() => undefined);
        await client.call('RemovePodSandbox', { pod_sandbox_id: podId }).catch(() => undefined);
      }
      client?.close();
      await cri?.stop();
    }, 60_000);

    it('attributes every container, however short, with its id and digests; host records stay host', async () => {
      await matrix(async (tag, s) => {
        const { container_id: cid } = (await client.call('CreateContainer', {
          pod_sandbox_id: podId,
          config: {
            metadata: { name: `c-${tag}`, attempt: 0 },
            image: { image: image.ref },
            command: script(tag, s),
          },
          sandbox_config: sandboxConfig,
        })) as { container_id: string };
        h.expected.set(tag, {
          id: cid,
          runtime: 'containerd',
          imageManifestDigest: image.manifestDigest,
          imageConfigDigest: image.configDigest,
        });
        await client.call('StartContainer', { container_id: cid });
        // Removed as soon as it has exited, as kubelet's container GC may.
        await waitFor(
          `CRI container ${cid} to exit`,
          async () => {
            const st = (await client.call('ContainerStatus', { container_id: cid })) as unknown as {
              status?: { state?: string };
            };
            return st.status?.state === 'CONTAINER_EXITED' ? true : undefined;
          },
          60_000,
        );
        await client.call('RemoveContainer', { container_id: cid });
      }, h);
      report('CRI', h);
    }, 240_000);
  },
);
