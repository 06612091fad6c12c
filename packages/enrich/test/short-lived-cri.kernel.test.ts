import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { canRunBpf, gate } from '@stellaops/testing';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { type BuiltImage, buildImage } from '../../../tools/oci-image/ctr.js';
import { CriClient, type CriContainerd, PAUSE_REF, startCriContainerd } from './cri-harness.js';
import { waitFor } from './helpers.js';
import { Harness, matrix, report, run, script, testImage, what } from './short-lived-harness.js';

// CRI containers (containerd's CRI plugin, as kubelet drives it) living 5 ms
// to 1 s, each removed as soon as it has exited (short-lived-harness.ts says
// what is checked).

let image: BuiltImage;
const images: string[] = [];
function criReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to run containerd';
  if (spawnSync('sh', ['-c', 'command -v containerd && command -v containerd-shim-runc-v2']).status !== 0) {
    return 'containerd is not installed (apt-get install containerd)';
  }
  return undefined;
}

describe.runIf(canRunBpf(what) && gate(`${what}: CRI`, criReason()))(
  'CRI, container removed right after exit',
  () => {
    const h = new Harness();
    let cri: CriContainerd;
    let client: CriClient;
    let podId: string;
    const podUid = `5c0ffee0-${run.slice(-4).padStart(4, '0')}-4e8a-9b7c-1d2e3f4a5b6c`.replace(
      /[^0-9a-f-]/g,
      'a',
    );
    const sandboxConfig = {
      metadata: { name: `short-${run}`, uid: podUid, namespace: 'short', attempt: 0 },
      labels: { 'io.kubernetes.pod.name': `short-${run}`, 'io.kubernetes.pod.namespace': 'short' },
      linux: {
        cgroup_parent: `/kubepods/besteffort/pod${podUid}`,
        security_context: { namespace_options: { network: 'NODE', pid: 'CONTAINER', ipc: 'POD' } },
      },
    };
    beforeAll(async () => {
      const pause = buildImage({ ref: PAUSE_REF, cmd: ['/bin/sleep', '2147483647'] });
      images.push(dirname(pause.tar));
      image = testImage();
      images.push(dirname(image.tar));
      cri = await startCriContainerd([pause, image]);
      client = new CriClient(cri.socket);
      await h.start({ containerd: { socket: cri.socket }, docker: false, podman: false, crio: false });
      ({ pod_sandbox_id: podId } = (await client.call('RunPodSandbox', { config: sandboxConfig })) as {
        pod_sandbox_id: string;
      });
    }, 120_000);
    afterAll(async () => {
      await h.stop();
      if (podId) {
        await client.call('StopPodSandbox', { pod_sandbox_id: podId }).catch(() => undefined);
        await client.call('RemovePodSandbox', { pod_sandbox_id: podId }).catch(() => undefined);
      }
      client?.close();
      await cri?.stop();
      for (const d of images) rmSync(d, { recursive: true, force: true });
    }, 60_000);

    it('attributes every container, however short, with its id and digests; host records stay host', async () => {
      await matrix(async (tag, s) => {
        const { container_id: cid } = (await client.call('CreateContainer', {
          pod_sandbox_id: podId,
          config: {
            metadata: { name: `c-${tag}`, attempt: 0 },
            image: { image: image.ref },
            command: script(tag, s),
          },
          sandbox_config: sandboxConfig,
        })) as { container_id: string };
        h.expected.set(tag, {
          id: cid,
          runtime: 'containerd',
          imageManifestDigest: image.manifestDigest,
          imageConfigDigest: image.configDigest,
        });
        await client.call('StartContainer', { container_id: cid });
        // Removed as soon as it has exited, as kubelet's container GC may.
        await waitFor(
          `CRI container ${cid} to exit`,
          async () => {
            const st = (await client.call('ContainerStatus', { container_id: cid })) as unknown as {
              status?: { state?: string };
            };
            return st.status?.state === 'CONTAINER_EXITED' ? true : undefined;
          },
          60_000,
        );
        await client.call('RemoveContainer', { container_id: cid });
      }, h);
      report('CRI', h);
    }, 240_000);
  },
);
