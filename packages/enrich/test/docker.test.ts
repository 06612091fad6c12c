import { readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ContainerTracker, containerField, EnrichmentStage } from '@stellaops/enrich';
import { gate } from '@stellaops/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BuiltImage, buildImage, cgroupIdOf, cgroupV2Root } from '../../../tools/oci-image/ctr.js';
import { type Daemon, dockerdUnavailableReason, startDockerd } from '../../../tools/oci-image/daemons.js';
import { waitFor } from './helpers.js';

describe.runIf(gate('dockerd container attribution', dockerdUnavailableReason()))(
  'dockerd (docker.io), real containers',
  () => {
    let image: BuiltImage;
    let dockerd: Daemon;
    const trackers: ContainerTracker[] = [];
    const tracker = async () => {
      const t = await ContainerTracker.create({
        containerd: false,
        podman: false,
        crio: false,
        docker: { socket: dockerd.socket },
      });
      trackers.push(t);
      return t;
    };
    const run = (...args: string[]) => {
      const id = dockerd.cli(['run', '-d', '--network', 'none', 'stellaops/busybox:test', ...args]);
      const pid = Number(dockerd.cli(['inspect', '-f', '{{.State.Pid}}', id]));
      return { id, pid, cgroupId: cgroupIdOf(pid) };
    };

    beforeAll(async () => {
      image = buildImage();
      dockerd = await startDockerd();
      dockerd.cli(['load', '-i', image.tar]);
    }, 120_000);

    afterAll(async () => {
      for (const t of trackers) t.close();
      await dockerd?.stop();
      if (image) rmSync(dirname(image.tar), { recursive: true, force: true });
    }, 60_000);

    it('maps a container process to its id, image ref and config digest, and says why the manifest digest is missing', async () => {
      const c = run('sleep', '3600');
      const t = await tracker();
      expect(t.status()).toEqual([
        { runtime: 'docker', socket: dockerd.socket, listed: true, containers: 1 },
      ]);
      const info = t.lookup(c.cgroupId, c.pid);
      expect(info).toEqual({
        id: c.id,
        runtime: 'docker',
        cgroupPath: `/docker/${c.id}`,
        imageRef: 'stellaops/busybox:test',
        imageConfigDigest: image.configDigest,
        missing: [
          'image_manifest_digest: docker has no repo digest for a loaded (never pulled or pushed) image',
        ],
      });
    });

    it("attributes a binary exec'd inside the container", async () => {
      const c = run('sleep', '3600');
      const t = await tracker();
      dockerd.cli(['exec', '-d', c.id, '/bin/sleep', '30']);
      const execPid = await waitFor('exec pid', () =>
        readFileSync(join(cgroupV2Root(), `/docker/${c.id}`, 'cgroup.procs'), 'utf8')
          .split('\n')
          .map(Number)
          .find((p) => p > 0 && p !== c.pid),
      );
      const r = await t.resolveDetailed(cgroupIdOf(execPid), execPid);
      expect(r).toMatchObject({
        status: 'resolved',
        container: { id: c.id, imageConfigDigest: image.configDigest },
      });
      expect(containerField(r)).toMatchObject({ id: c.id, runtime: 'docker', status: 'resolved' });
      expect(containerField(r)).not.toHaveProperty('image_manifest_digest');
    });

    it('attributes a container started after tracking began, from its first process', async () => {
      const t = await tracker();
      const stage = new EnrichmentStage(t);
      const c = run('sleep', '3600');
      const out = [];
      for await (const b of stage.run(
        (async function* () {
          yield [{ cgroupId: c.cgroupId, pid: c.pid }];
        })(),
      ))
        out.push(...b);
      expect(out[0]!.enrichment).toMatchObject({
        status: 'resolved',
        container: { id: c.id, runtime: 'docker' },
      });
    });

    it('learns containers from the /events stream', async () => {
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
