import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { canRunBpf, gate } from '@stellaops/testing';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { type BuiltImage, ctrUnavailableReason, importImage } from '../../../tools/oci-image/ctr.js';
import { Harness, matrix, report, run, runAsync, script, testImage, what } from './short-lived-harness.js';

// Containers of `ctr run --rm` living 5 ms to 1 s (short-lived-harness.ts says what is checked).

let image: BuiltImage;
describe.runIf(canRunBpf(what) && gate(`${what}: ctr`, ctrUnavailableReason()))('ctr run --rm', () => {
  const h = new Harness();
  const ns = `stella-short-${run}`;
  beforeAll(async () => {
    image = testImage();
    importImage(image, ns);
    await h.start({
      containerd: { socket: '/run/containerd/containerd.sock' },
      docker: false,
      podman: false,
      crio: false,
    });
  }, 120_000);
  afterAll(async () => {
    await h.stop();
    if (image) {
      spawnSync('ctr', ['-n', ns, 'image', 'rm', image.ref], { stdio: 'ignore' });
      rmSync(dirname(image.tar), { recursive: true, force: true });
    }
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
