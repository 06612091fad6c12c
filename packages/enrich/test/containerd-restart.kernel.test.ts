import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { canRunBpf, gate } from '@stellaops/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuiltImage } from '../../../tools/oci-image/ctr.js';
import { type CriContainerd, startCriContainerd } from './cri-harness.js';
import { Harness, run, runAsync, script, testImage, what } from './short-lived-harness.js';

// Issue 12, runtime outages: after containerd restarts, the containers
// started right away must be attributed like any other (the tracker used to
// keep a failed gRPC channel and leave them `unknown` for 1-3 s). A private
// containerd (cri-harness.ts) is restarted; the shared one is never touched.

function reason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to run containerd';
  if (spawnSync('sh', ['-c', 'command -v containerd && command -v containerd-shim-runc-v2']).status !== 0) {
    return 'containerd is not installed (apt-get install containerd)';
  }
  return undefined;
}

describe.runIf(canRunBpf(what) && gate(`${what}: containerd restart`, reason()))(
  'containerd restarted under the tracker',
  () => {
    const h = new Harness();
    let image: BuiltImage;
    let cri: CriContainerd;
    beforeAll(async () => {
      image = testImage();
      cri = await startCriContainerd([image]);
      await h.start({ containerd: { socket: cri.socket }, docker: false, podman: false, crio: false });
    }, 120_000);
    afterAll(async () => {
      await h.stop();
      await cri?.stop();
      if (image) rmSync(dirname(image.tar), { recursive: true, force: true });
    }, 60_000);

    const start = async (tag: string, seconds: number) => {
      const id = `restart-${tag}`;
      h.expected.set(tag, {
        id,
        runtime: 'containerd',
        imageManifestDigest: image.manifestDigest,
        imageConfigDigest: image.configDigest,
      });
      await runAsync('ctr', [
        '--address',
        cri.socket,
        '-n',
        'k8s.io',
        'run',
        '--rm',
        image.ref,
        id,
        ...script(tag, seconds),
      ]);
    };

    it('attributes the containers started right after a restart', async () => {
      await start(`${run}-before`, 0.2);
      await h.settle();
      // Down long enough for a gRPC channel's reconnect backoff to grow past the restart.
      await cri.restart(3000);
      // At once, one after another: 5 ms, 0.2 s and 1 s lifetimes.
      for (const [i, s] of [0, 0.2, 1, 0, 0.2].entries()) await start(`${run}-after${i}`, s);
      await h.settle();
      const t = h.tally();
      console.log(
        `containerd restart: ${t.attributed}/${t.total} attributed; unknown: ${t.unknown.join('; ')}`,
      );
      expect(t.host).toEqual([]);
      expect(t.wrong).toEqual([]);
      expect(t.unknown).toEqual([]);
      expect(t.attributed).toBe(t.total);
    }, 180_000);
  },
);
