import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { ContainerTracker, EnrichmentStage, readProcessInfo } from '@stellaops/enrich';
import { gate } from '@stellaops/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BuiltImage, buildImage, cgroupIdOf } from '../../../tools/oci-image/ctr.js';
import {
  type Daemon,
  podmanRunFlags,
  podmanUnavailableReason,
  startPodman,
} from '../../../tools/oci-image/daemons.js';
import { waitFor } from './helpers.js';

describe.runIf(gate('podman container attribution', podmanUnavailableReason()))(
  'podman (runc, cgroupfs), real containers',
  () => {
    let image: BuiltImage;
    let podman: Daemon;
    const trackers: ContainerTracker[] = [];
    const tracker = async () => {
      const t = await ContainerTracker.create({
        containerd: false,
        docker: false,
        crio: false,
        podman: { socket: podman.socket },
      });
      trackers.push(t);
      return t;
    };
    const run = (...args: string[]) => {
      const id = podman.cli(['run', '-d', ...podmanRunFlags(), image.ref, ...args]);
      const pid = Number(podman.cli(['inspect', '-f', '{{.State.Pid}}', id]));
      const conmon = Number(podman.cli(['inspect', '-f', '{{.State.ConmonPid}}', id]));
      return { id, pid, conmon, cgroupId: cgroupIdOf(pid) };
    };

    beforeAll(async () => {
      image = buildImage();
      podman = await startPodman();
      podman.cli(['load', '-i', image.tar]);
    }, 120_000);

    afterAll(async () => {
      for (const t of trackers) t.close();
      await podman?.stop();
      if (image) rmSync(dirname(image.tar), { recursive: true, force: true });
    }, 60_000);

    it('maps a container process to its id, image ref, manifest and config digests', async () => {
      const c = run('sleep', '3600');
      const t = await tracker();
      expect(t.lookup(c.cgroupId, c.pid)).toEqual({
        id: c.id,
        runtime: 'podman',
        cgroupPath: `/libpod_parent/libpod-${c.id}`,
        imageRef: image.ref,
        imageManifestDigest: image.manifestDigest,
        imageConfigDigest: image.configDigest,
      });
      expect(readProcessInfo(c.pid)).toMatchObject({ exe: '/bin/busybox', ownRoot: true });
    });

    it('treats conmon (only in v1 hierarchies, v2 id = root) as a host process via its v1 path', async () => {
      const c = run('sleep', '3600');
      const t = await tracker();
      const id = cgroupIdOf(c.conmon);
      expect(id).toBe(t.cgroups.rootId);
      const r = await t.resolveDetailed(id, c.conmon);
      expect(r).toEqual({ status: 'host', cgroupPath: '/libpod_parent/conmon' });
      // The container's own process, looked up right after, is unaffected.
      expect(t.lookup(c.cgroupId, c.pid)?.id).toBe(c.id);
    });

    it('attributes a container started after tracking began, from its first process', async () => {
      const t = await tracker();
      const c = run('sleep', '3600');
      const out = [];
      for await (const b of new EnrichmentStage(t).run(
        (async function* () {
          yield [{ cgroupId: c.cgroupId, pid: c.pid }];
        })(),
      ))
        out.push(...b);
      expect(out[0]!.enrichment).toMatchObject({
        status: 'resolved',
        container: { id: c.id, runtime: 'podman', imageManifestDigest: image.manifestDigest },
      });
    });

    it('learns containers from the libpod /events stream', async () => {
      const t = await tracker();
      await new Promise((r) => setTimeout(r, 500));
      const c = run('sleep', '3600');
      expect(await waitFor('event-driven prefetch', () => t.lookup(c.cgroupId, c.pid))).toMatchObject({
        id: c.id,
      });
      expect(t.stats().events).toBeGreaterThan(0);
    });
  },
);
