import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { canRunBpf, gate } from '@stellaops/testing';
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { BuiltImage } from '../../../tools/oci-image/ctr.js';
import {
  type Daemon,
  podmanRunFlags,
  podmanUnavailableReason,
  startPodman,
} from '../../../tools/oci-image/daemons.js';
import { Harness, matrix, report, run, runAsync, script, testImage, what } from './short-lived-harness.js';

// Containers of `podman run --rm` living 5 ms to 1 s (short-lived-harness.ts says what is checked).

let image: BuiltImage;
describe.runIf(canRunBpf(what) && gate(`${what}: podman`, podmanUnavailableReason()))(
  'podman run --rm',
  () => {
    const h = new Harness();
    let podman: Daemon;
    const cids = join(tmpdir(), `stella-short-cid-${run}-podman`);
    beforeAll(async () => {
      podman = await startPodman();
      image = testImage();
      podman.cli(['load', '-i', image.tar]);
      mkdirSync(cids, { recursive: true });
      await h.start({ podman: { socket: podman.socket }, containerd: false, docker: false, crio: false });
    }, 120_000);
    afterAll(async () => {
      await h.stop();
      await podman?.stop();
      rmSync(cids, { recursive: true, force: true });
      if (image) rmSync(dirname(image.tar), { recursive: true, force: true });
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
  },
);
