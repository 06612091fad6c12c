import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ContainerTracker, containerField } from '@stellaops/enrich';
import { gate } from '@stellaops/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cgroupIdOf, cgroupV2Root } from '../../../tools/oci-image/ctr.js';

/*
 * CRI-O cannot run here (no Debian 12 package, no registry to fetch one), so
 * its HTTP inspect API is a STAND-IN: a local server on a unix socket that
 * answers `GET /containers/<id>` in CRI-O's documented shape. The cgroup is
 * real: a process is moved into a real `crio-<id>.scope` cgroup, and the
 * tracker resolves it from its real bpf cgroup id.
 */
const ID = 'c0ffee00112233445566778899aabbccddeeff00112233445566778899aabbcc';
const reason = process.getuid?.() !== 0 ? 'needs root to create cgroups' : undefined;

describe.runIf(gate('CRI-O attribution (stand-in API, real cgroup)', reason))(
  'CRI-O inspect API (stand-in server)',
  () => {
    let server: Server;
    let socket: string;
    const requests: string[] = [];
    const slice = join(cgroupV2Root(), `stella-crio-test-${process.pid}.slice`);
    const scope = join(slice, `crio-${ID}.scope`);
    let child: ReturnType<typeof spawn>;

    beforeAll(async () => {
      socket = join(mkdtempSync(join(tmpdir(), 'stella-crio-')), 'crio.sock');
      server = createServer((req, res) => {
        requests.push(req.url ?? '');
        if (req.url === `/containers/${ID}`) {
          res.setHeader('content-type', 'application/json');
          res.end(
            JSON.stringify({
              name: 'k8s_app_web-0_shop_4f1d_0',
              pid: child.pid,
              image: 'registry.example/shop/web:1.2',
              image_ref:
                'registry.example/shop/web@sha256:1111111111111111111111111111111111111111111111111111111111111111',
              labels: {
                'io.kubernetes.pod.name': 'web-0',
                'io.kubernetes.pod.namespace': 'shop',
                'io.kubernetes.pod.uid': '4f1d',
                'io.kubernetes.container.name': 'app',
              },
              annotations: {},
              sandbox: 'abc',
              ip_addresses: [],
            }),
          );
        } else {
          res.statusCode = 404;
          res.end('container not found');
        }
      });
      await new Promise<void>((r) => server.listen(socket, r));
      mkdirSync(scope, { recursive: true });
      child = spawn('sleep', ['60'], { stdio: 'ignore' });
      await new Promise((r) => child.once('spawn', r));
      writeFileSync(join(scope, 'cgroup.procs'), String(child.pid));
    });

    afterAll(async () => {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      rmdirSync(scope);
      rmdirSync(slice);
      server.close();
      rmSync(dirname(socket), { recursive: true, force: true });
    });

    it('resolves a crio-<id>.scope cgroup to id, image ref and manifest digest, naming what CRI-O cannot give', async () => {
      const t = await ContainerTracker.create({
        containerd: false,
        docker: false,
        podman: false,
        crio: { socket },
      });
      try {
        const r = await t.resolveDetailed(cgroupIdOf(child.pid!), child.pid);
        expect(r).toEqual({
          status: 'resolved',
          cgroupPath: `/stella-crio-test-${process.pid}.slice/crio-${ID}.scope`,
          container: {
            id: ID,
            runtime: 'cri-o',
            cgroupPath: `/stella-crio-test-${process.pid}.slice/crio-${ID}.scope`,
            imageRef: 'registry.example/shop/web:1.2',
            imageManifestDigest: 'sha256:1111111111111111111111111111111111111111111111111111111111111111',
            k8s: { pod: 'web-0', namespace: 'shop', podUid: '4f1d', container: 'app' },
            missing: ['image_config_digest: CRI-O inspect does not report the image config digest'],
          },
        });
        expect(containerField(r)).toMatchObject({ runtime: 'cri-o', k8s: { pod_uid: '4f1d' } });
        expect(requests).toContain(`/containers/${ID}`);
      } finally {
        t.close();
      }
    });

    it('still names the container from its cgroup when the runtime API is down, saying why', async () => {
      const t = await ContainerTracker.create({
        containerd: false,
        docker: false,
        podman: false,
        crio: { socket },
      });
      server.close();
      try {
        const r = await t.resolveDetailed(cgroupIdOf(child.pid!), child.pid);
        expect(r.status).toBe('resolved');
        if (r.status !== 'resolved') return;
        expect(r.container.id).toBe(ID);
        expect(r.container.imageRef).toBeUndefined();
        expect(r.container.missing?.[0]).toMatch(/^image_ref: cannot talk to .*crio\.sock/);
      } finally {
        t.close();
      }
    });
  },
);
