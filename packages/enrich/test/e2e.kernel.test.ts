import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ContainerTracker, type Enriched, EnrichmentStage } from '@stellaops/enrich';
import { openProbeSet, type ProbeEvent } from '@stellaops/probes';
import { canRunBpf, gate } from '@stellaops/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BuiltImage,
  buildImage,
  type CtrContainer,
  cgroupIdOf,
  ctrUnavailableReason,
  importImage,
  runCtr,
} from '../../../tools/oci-image/ctr.js';
import {
  type Daemon,
  dockerdUnavailableReason,
  podmanRunFlags,
  podmanUnavailableReason,
  startDockerd,
  startPodman,
} from '../../../tools/oci-image/daemons.js';
import { waitFor } from './helpers.js';

// Kernel to container: the real file/exec probes (@stellaops/probes) feed the
// enrichment stage. Containers of each runtime, started after collection
// began, must have their first file opens and execs attributed with image
// reference and digests; a host process must get no container.

const ns = `stella-enrich-e2e-${process.pid}`;
const what = 'kernel → container attribution (probes + enrich)';
const runs =
  canRunBpf(what) &&
  gate(what, ctrUnavailableReason() ?? dockerdUnavailableReason() ?? podmanUnavailableReason());
const SCRIPT = ['/bin/sh', '-c', 'cat /etc/stella-e2e.txt; exec sleep 3600'];

describe.runIf(runs)('file opens and execs from the kernel, attributed to containers', () => {
  let image: BuiltImage;
  let tracker: ContainerTracker;
  let probes: ReturnType<typeof openProbeSet>;
  let dockerd: Daemon;
  let podman: Daemon;
  const seen: Enriched<ProbeEvent>[] = [];
  let pump: Promise<void>;
  const started: CtrContainer[] = [];
  const hostFile = join(tmpdir(), `stella-e2e-host-${process.pid}`);

  /** The first file_open of the marker, and an exec, from this cgroup. */
  async function eventsOf(cgroupId: bigint) {
    const open = await waitFor(`file_open in cgroup ${cgroupId}`, () =>
      seen.find(
        (e) =>
          e.kind === 'file_open' && e.cgroupId === cgroupId && e.path.toString() === '/etc/stella-e2e.txt',
      ),
    );
    const exec = await waitFor(`exec in cgroup ${cgroupId}`, () =>
      seen.find((e) => e.kind === 'exec' && e.cgroupId === cgroupId),
    );
    return { open, exec };
  }

  beforeAll(async () => {
    const marker = join(tmpdir(), `stella-e2e-marker-${process.pid}`);
    writeFileSync(marker, 'inside the image\n');
    writeFileSync(hostFile, 'on the host\n');
    image = buildImage({ add: [{ src: marker, dst: '/etc/stella-e2e.txt' }] });
    rmSync(marker);
    importImage(image, ns);
    [dockerd, podman] = await Promise.all([startDockerd(), startPodman()]);
    dockerd.cli(['load', '-i', image.tar]);
    podman.cli(['load', '-i', image.tar]);
    rmSync(dirname(image.tar), { recursive: true, force: true });
    tracker = await ContainerTracker.create({
      docker: { socket: dockerd.socket },
      podman: { socket: podman.socket },
      crio: false,
    });
    probes = openProbeSet({
      probes: ['file_open', 'exec'],
      dedup: { enabled: false },
      filters: { pathAllowPrefixes: ['/etc/stella-e2e', hostFile, '/bin/cat'] },
    });
    const stage = new EnrichmentStage(tracker);
    pump = (async () => {
      for await (const batch of stage.run(probes)) seen.push(...batch);
    })();
  }, 180_000);

  afterAll(async () => {
    await probes?.close();
    await pump?.catch(() => undefined);
    tracker?.close();
    for (const c of started) c.stop();
    await Promise.all([dockerd?.stop(), podman?.stop()]);
    rmSync(hostFile, { force: true });
    spawnSync('ctr', ['-n', ns, 'image', 'rm', image.ref], { stdio: 'ignore' });
    for (let i = 0; i < 30; i++) {
      if (spawnSync('ctr', ['namespaces', 'rm', ns], { stdio: 'ignore' }).status === 0) break;
      spawnSync('sleep', ['0.2']);
    }
  }, 120_000);

  it('containerd (ctr): first exec and file open carry container id, image ref and both digests', async () => {
    const c = runCtr({ namespace: ns, image, args: SCRIPT });
    started.push(c);
    const { open, exec } = await eventsOf(c.cgroupId);
    expect(open.enrichment).toEqual({
      status: 'resolved',
      cgroupPath: `/${ns}/${c.id}`,
      container: {
        id: c.id,
        runtime: 'containerd',
        namespace: ns,
        cgroupPath: `/${ns}/${c.id}`,
        imageRef: image.ref,
        imageManifestDigest: image.manifestDigest,
        imageConfigDigest: image.configDigest,
      },
    });
    expect(exec.enrichment).toMatchObject({ status: 'resolved', container: { id: c.id } });
  });

  it('dockerd: first exec and file open carry container id, image ref and config digest', async () => {
    const id = dockerd.cli(['run', '-d', '--network', 'none', 'stellaops/busybox:test', ...SCRIPT]);
    const cgroupId = cgroupIdOf(Number(dockerd.cli(['inspect', '-f', '{{.State.Pid}}', id])));
    const { open, exec } = await eventsOf(cgroupId);
    expect(open.enrichment).toMatchObject({
      status: 'resolved',
      container: {
        id,
        runtime: 'docker',
        imageRef: 'stellaops/busybox:test',
        imageConfigDigest: image.configDigest,
      },
    });
    expect(exec.enrichment).toMatchObject({ status: 'resolved', container: { id } });
  });

  it('podman: first exec and file open carry container id, image ref and both digests', async () => {
    const id = podman.cli(['run', '-d', ...podmanRunFlags(), image.ref, ...SCRIPT]);
    const cgroupId = cgroupIdOf(Number(podman.cli(['inspect', '-f', '{{.State.Pid}}', id])));
    const { open, exec } = await eventsOf(cgroupId);
    expect(open.enrichment).toMatchObject({
      status: 'resolved',
      container: {
        id,
        runtime: 'podman',
        imageRef: image.ref,
        imageManifestDigest: image.manifestDigest,
        imageConfigDigest: image.configDigest,
      },
    });
    expect(exec.enrichment).toMatchObject({ status: 'resolved', container: { id } });
  });

  it('a host process opening a file gets no container', async () => {
    spawnSync('cat', [hostFile], { stdio: 'ignore' });
    const host = await waitFor('host file_open', () =>
      seen.find((e) => e.kind === 'file_open' && e.path.toString() === hostFile),
    );
    expect(host.enrichment.status).toBe('host');
  });
});
