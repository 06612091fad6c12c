import { ContainerdClient } from '@stellaops/enrich';
import { canRunBpf, gate } from '@stellaops/testing';
import { describe, expect, it, onTestFinished } from 'vitest';
import { ctrUnavailableReason } from '../../../tools/oci-image/ctr.js';
import { Harness, run, runAsync, useCtrImage } from './short-lived-harness.js';

// The first container after the collector starts (seen once on a loaded
// machine: all its records `unknown`, the image never attached, while later
// containers were fine). Its first records may go out `unknown` after the
// bounded wait when containerd is slow; its later ones must name it.
const what = 'the first container after start is attributed (probes + enrich, ctr)';

describe.runIf(canRunBpf(what) && gate(what, ctrUnavailableReason()))('first container after start', () => {
  const h = new Harness();
  const ns = `stella-first-${run}`;
  const ctrImage = useCtrImage(ns, h);

  it("names the container and its image digests in its later records, whatever its first lookup's luck", async () => {
    const image = ctrImage();
    await h.start({
      containerd: { socket: '/run/containerd/containerd.sock' },
      docker: false,
      podman: false,
      crio: false,
    });
    // At once: no other container has been looked up by this tracker yet.
    const id = `first-${run}`;
    // Its first lookup comes back as one whose image lookup timed out (what a
    // loaded host gave): the tracker must not keep that for the container's life.
    const inspect = ContainerdClient.prototype.inspect;
    let unlucky = true;
    ContainerdClient.prototype.inspect = async function (this: ContainerdClient, cid, cns) {
      const rc = await inspect.call(this, cid, cns);
      if (cid !== id || rc === undefined || !unlucky) return rc;
      unlucky = false;
      const { imageManifestDigest: _m, imageConfigDigest: _c, ...rest } = rc;
      const why = `containerd at ${this.socket}: Deadline exceeded`;
      return {
        ...rest,
        missing: [`image_manifest_digest: ${why}`, `image_config_digest: ${why}`],
        incomplete: true,
      };
    };
    onTestFinished(() => {
      ContainerdClient.prototype.inspect = inspect;
    });
    const tag = `${run}-first`;
    await runAsync('ctr', [
      '-n',
      ns,
      'run',
      '--rm',
      image.ref,
      id,
      '/bin/sh',
      '-c',
      `cat /stella-mark-${tag}-early 2>/dev/null; sleep 1; cat /stella-mark-${tag}-late 2>/dev/null; exit 0`,
    ]);
    h.expected.set(`${tag}-early`, {
      id,
      runtime: 'containerd',
      imageManifestDigest: image.manifestDigest,
      imageConfigDigest: image.configDigest,
    });
    h.expected.set(`${tag}-late`, {
      id,
      runtime: 'containerd',
      imageManifestDigest: image.manifestDigest,
      imageConfigDigest: image.configDigest,
    });
    await h.settle();
    const early = h.marks.get(`${tag}-early`)!.map((e) => e.enrichment);
    const late = h.marks.get(`${tag}-late`)!.map((e) => e.enrichment);
    expect(unlucky, 'the first lookup was answered incomplete').toBe(false);
    console.log(
      `first container: early records ${early.map((r) => r.status).join(',')}; late ${late.map((r) => r.status).join(',')}`,
    );
    expect(
      early.filter((r) => r.status === 'host'),
      'container records written as host',
    ).toEqual([]);
    for (const r of late) {
      expect(r).toMatchObject({
        status: 'resolved',
        container: { id, imageManifestDigest: image.manifestDigest, imageConfigDigest: image.configDigest },
      });
    }
  }, 120_000);
});
