import { canRunBpf, gate } from '@stellaops/testing';
import { beforeAll, describe, it } from 'vitest';
import { ctrUnavailableReason } from '../../../tools/oci-image/ctr.js';
import { Harness, matrix, report, run, runAsync, script, useCtrImage, what } from './short-lived-harness.js';

// Containers of `ctr run --rm` living 5 ms to 1 s (short-lived-harness.ts says what is checked).

describe.runIf(canRunBpf(what) && gate(`${what}: ctr`, ctrUnavailableReason()))('ctr run --rm', () => {
  const h = new Harness();
  const ns = `stella-short-${run}`;
  const ctrImage = useCtrImage(ns, h);
  beforeAll(async () => {
    await h.start({
      containerd: { socket: '/run/containerd/containerd.sock' },
      docker: false,
      podman: false,
      crio: false,
    });
  }, 120_000);

  it('attributes every container, however short, with its id and digests; host records stay host', async () => {
    const image = ctrImage();
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
