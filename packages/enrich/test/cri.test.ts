import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { ContainerTracker, containerField } from '@stellaops/enrich';
import { gate } from '@stellaops/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BuiltImage, buildImage, cgroupIdOf, cgroupPathOf } from '../../../tools/oci-image/ctr.js';
import { CriClient, type CriContainerd, PAUSE_REF, startCriContainerd } from './cri-harness.js';
import { waitFor } from './helpers.js';

function reason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to run containerd';
  if (spawnSync('sh', ['-c', 'command -v containerd && command -v containerd-shim-runc-v2']).status !== 0) {
    return 'containerd is not installed (apt-get install containerd)';
  }
  return undefined;
}

describe.runIf(gate('containerd CRI pod attribution', reason()))('containerd CRI plugin, a real pod', () => {
  let image: BuiltImage;
  let cri: CriContainerd;
  let client: CriClient;
  const pods: string[] = [];

  beforeAll(async () => {
    image = buildImage();
    const pause = buildImage({ ref: PAUSE_REF, cmd: ['/bin/sleep', '2147483647'] });
    cri = await startCriContainerd([pause, image]);
    for (const i of [pause, image]) rmSync(dirname(i.tar), { recursive: true, force: true });
    client = new CriClient(cri.socket);
  }, 120_000);

  afterAll(async () => {
    for (const p of pods) {
      await client.call('StopPodSandbox', { pod_sandbox_id: p }).catch(() => undefined);
      await client.call('RemovePodSandbox', { pod_sandbox_id: p }).catch(() => undefined);
    }
    client?.close();
    await cri?.stop();
  }, 60_000);

  it('resolves a CRI container to its pod, namespace, uid, container name, image ref and both digests', async () => {
    const podUid = '6b2a1c3e-5d4f-4e8a-9b7c-1d2e3f4a5b6c';
    // The labels kubelet puts on every sandbox and container (kubelet's newPodLabels/newContainerLabels).
    const podLabels = {
      'io.kubernetes.pod.name': 'web-0',
      'io.kubernetes.pod.namespace': 'shop',
      'io.kubernetes.pod.uid': podUid,
    };
    const sandboxConfig = {
      metadata: { name: 'web-0', uid: podUid, namespace: 'shop', attempt: 0 },
      labels: podLabels,
      linux: {
        cgroup_parent: `/kubepods/besteffort/pod${podUid}`,
        security_context: { namespace_options: { network: 'NODE', pid: 'CONTAINER', ipc: 'POD' } },
      },
    };
    const { pod_sandbox_id: podId } = await client.call('RunPodSandbox', { config: sandboxConfig });
    pods.push(podId!);
    const { container_id: cid } = await client.call('CreateContainer', {
      pod_sandbox_id: podId,
      config: {
        metadata: { name: 'app', attempt: 0 },
        labels: { ...podLabels, 'io.kubernetes.container.name': 'app' },
        image: { image: image.ref },
        command: ['/bin/sleep', '3600'],
      },
      sandbox_config: sandboxConfig,
    });
    await client.call('StartContainer', { container_id: cid });
    const pid = await waitFor('CRI container pid', () => {
      const row = cri
        .ctr(['task', 'ls'])
        .split('\n')
        .find((l) => l.startsWith(`${cid} `));
      const n = Number(row?.split(/\s+/)[1] ?? 0);
      return n > 0 ? n : undefined;
    });
    expect(cgroupPathOf(pid)).toBe(`/kubepods/besteffort/pod${podUid}/${cid}`);

    const t = await ContainerTracker.create({
      containerd: { socket: cri.socket },
      docker: false,
      podman: false,
      crio: false,
    });
    try {
      const r = await t.resolveDetailed(cgroupIdOf(pid), pid);
      expect(r).toMatchObject({
        status: 'resolved',
        container: {
          id: cid,
          runtime: 'containerd',
          namespace: 'k8s.io',
          cgroupPath: `/kubepods/besteffort/pod${podUid}/${cid}`,
          imageRef: image.ref,
          imageManifestDigest: image.manifestDigest,
          imageConfigDigest: image.configDigest,
          k8s: { pod: 'web-0', namespace: 'shop', podUid, container: 'app' },
        },
      });
      expect(containerField(r)?.k8s).toEqual({
        pod: 'web-0',
        namespace: 'shop',
        pod_uid: podUid,
        container: 'app',
      });
    } finally {
      t.close();
    }
  });
});
