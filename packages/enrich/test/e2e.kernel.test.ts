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
  ctrUnavailableReason,
  importImage,
  runCtr,
} from '../../../tools/oci-image/ctr.js';
import { waitFor } from './helpers.js';

// Kernel to container: the real file/exec probes (@stellaops/probes) feed the
// enrichment stage; a container started after collection began must have its
// first file opens and execs attributed, a host process must not.

const ns = `stella-enrich-e2e-${process.pid}`;
const runs =
  canRunBpf('kernel → container attribution (probes + enrich)') &&
  gate('kernel → container attribution', ctrUnavailableReason());

describe.runIf(runs)('file opens and execs from the kernel, attributed to containers', () => {
  let image: BuiltImage;
  let tracker: ContainerTracker;
  let probes: ReturnType<typeof openProbeSet>;
  const seen: Enriched<ProbeEvent>[] = [];
  let pump: Promise<void>;
  const started: CtrContainer[] = [];
  const hostFile = join(tmpdir(), `stella-e2e-host-${process.pid}`);

  beforeAll(async () => {
    const marker = join(tmpdir(), `stella-e2e-marker-${process.pid}`);
    writeFileSync(marker, 'inside the image\n');
    writeFileSync(hostFile, 'on the host\n');
    image = buildImage({ add: [{ src: marker, dst: '/etc/stella-e2e.txt' }] });
    importImage(image, ns);
    rmSync(marker);
    rmSync(dirname(image.tar), { recursive: true, force: true });
    tracker = await ContainerTracker.create({ docker: false, podman: false, crio: false });
    probes = openProbeSet({
      probes: ['file_open', 'exec'],
      dedup: { enabled: false },
      filters: { pathAllowPrefixes: ['/etc/stella-e2e', hostFile, '/bin/cat'] },
    });
    const stage = new EnrichmentStage(tracker);
    pump = (async () => {
      for await (const batch of stage.run(probes)) seen.push(...batch);
    })();
  }, 120_000);

  afterAll(async () => {
    await probes?.close();
    await pump?.catch(() => undefined);
    tracker?.close();
    for (const c of started) c.stop();
    rmSync(hostFile, { force: true });
    spawnSync('ctr', ['-n', ns, 'image', 'rm', image.ref], { stdio: 'ignore' });
    for (let i = 0; i < 30; i++) {
      if (spawnSync('ctr', ['namespaces', 'rm', ns], { stdio: 'ignore' }).status === 0) break;
      spawnSync('sleep', ['0.2']);
    }
  }, 60_000);

  it("attributes a new container's first exec and file open, with image ref and digests; the host open gets none", async () => {
    // Started after collection began: the tracker learns of it only now.
    const c = runCtr({
      namespace: ns,
      image,
      args: ['/bin/sh', '-c', 'cat /etc/stella-e2e.txt; exec sleep 3600'],
    });
    started.push(c);
    spawnSync('cat', [hostFile], { stdio: 'ignore' });

    const inContainer = await waitFor('container file_open', () =>
      seen.find((e) => e.kind === 'file_open' && e.path.toString() === '/etc/stella-e2e.txt'),
    );
    expect(inContainer.cgroupId).toBe(c.cgroupId);
    expect(inContainer.enrichment).toEqual({
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
    const exec = await waitFor('container exec of /bin/cat', () =>
      seen.find((e) => e.kind === 'exec' && e.cgroupId === c.cgroupId),
    );
    expect(exec.enrichment).toMatchObject({ status: 'resolved', container: { id: c.id } });

    const host = await waitFor('host file_open', () =>
      seen.find((e) => e.kind === 'file_open' && e.path.toString() === hostFile),
    );
    expect(host.enrichment.status).toBe('host');
  });
});
