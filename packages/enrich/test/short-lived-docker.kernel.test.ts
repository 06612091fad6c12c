import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { canRunBpf, gate } from '@stellaops/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuiltImage } from '../../../tools/oci-image/ctr.js';
import { type Daemon, dockerdUnavailableReason, startDockerd } from '../../../tools/oci-image/daemons.js';
import { Harness, matrix, report, run, runAsync, script, testImage, what } from './short-lived-harness.js';

// Containers of `docker run --rm` living 5 ms to 1 s (short-lived-harness.ts says what is checked).

let image: BuiltImage;
describe.runIf(canRunBpf(what) && gate(`${what}: docker`, dockerdUnavailableReason()))(
  'docker run --rm',
  () => {
    const h = new Harness();
    let dockerd: Daemon;
    const cids = join(tmpdir(), `stella-short-cid-${run}-docker`);
    beforeAll(async () => {
      dockerd = await startDockerd();
      image = testImage();
      dockerd.cli(['load', '-i', image.tar]);
      mkdirSync(cids, { recursive: true });
      await h.start({ docker: { socket: dockerd.socket }, containerd: false, podman: false, crio: false });
    }, 120_000);
    afterAll(async () => {
      await h.stop();
      await dockerd?.stop();
      rmSync(cids, { recursive: true, force: true });
      if (image) rmSync(dirname(image.tar), { recursive: true, force: true });
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
  },
);

function existsDocker(): string {
  return spawnSync('test', ['-x', '/usr/bin/docker']).status === 0 ? '/usr/bin/docker' : 'docker';
}
