import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  CONTAINERD_SOCKET,
  ContainerdClient,
  type ContainerInfo,
  ContainerTracker,
  containerField,
  EnrichmentStage,
  readElf,
  readProcessInfo,
  SymbolResolver,
} from '@stellaops/enrich';
import { gate } from '@stellaops/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BuiltImage,
  buildImage,
  type CtrContainer,
  cgroupIdOf,
  cgroupV2Root,
  ctrUnavailableReason,
  importImage,
  runCtr,
} from '../../../tools/oci-image/ctr.js';
import { buildConnectPrograms } from './fixtures/build.js';
import { waitFor } from './helpers.js';

const ns = `stella-enrich-${process.pid}`;

describe.runIf(gate('containerd (ctr) container attribution', ctrUnavailableReason()))(
  'containerd + runc, real containers',
  () => {
    let image: BuiltImage;
    let staticVaddr: number;
    const started: CtrContainer[] = [];
    const trackers: ContainerTracker[] = [];
    const cleanup: string[] = [];

    const run = (o: Partial<Parameters<typeof runCtr>[0]> = {}) => {
      const c = runCtr({ namespace: ns, image, ...o });
      started.push(c);
      return c;
    };
    const tracker = async (o: Parameters<typeof ContainerTracker.create>[0] = {}) => {
      const t = await ContainerTracker.create({ docker: false, podman: false, crio: false, ...o });
      trackers.push(t);
      return t;
    };

    beforeAll(() => {
      const progs = buildConnectPrograms();
      cleanup.push(progs.dir);
      const elf = readElf(progs.static);
      staticVaddr = elf.symbols.find((s) => s.name === 'stella_named_connect')!.value;
      image = buildImage({ add: [{ src: progs.static, dst: '/usr/bin/stella-connect' }] });
      importImage(image, ns);
      cleanup.push(dirname(image.tar));
    });

    afterAll(() => {
      for (const t of trackers) t.close();
      for (const c of started) c.stop();
      spawnSync('ctr', ['-n', ns, 'image', 'rm', image.ref], { stdio: 'ignore' });
      // containerd collects the image's content asynchronously; the namespace empties shortly after.
      for (let i = 0; i < 30; i++) {
        if (spawnSync('ctr', ['namespaces', 'rm', ns], { stdio: 'ignore' }).status === 0) break;
        spawnSync('sleep', ['0.2']);
      }
      for (const d of cleanup) rmSync(d, { recursive: true, force: true });
    });

    it("maps the init pid's cgroup id to container id, image ref, manifest and config digests (listed at start)", async () => {
      const c = run();
      const t = await tracker();
      expect(c.cgroupPath).toBe(`/${ns}/${c.id}`);
      const info = t.lookup(c.cgroupId, c.pid); // synchronous: known from the initial listing
      expect(info).toEqual<ContainerInfo>({
        id: c.id,
        runtime: 'containerd',
        namespace: ns,
        cgroupPath: `/${ns}/${c.id}`,
        imageRef: image.ref,
        imageManifestDigest: image.manifestDigest,
        imageConfigDigest: image.configDigest,
      });
      expect(t.status().find((s) => s.runtime === 'containerd')).toMatchObject({ listed: true });
      // Without a pid, the id alone resolves through the cgroup tree.
      const t2 = await tracker({ watch: false });
      // Synchronous by cgroup id alone: the start-up scan mapped the id to its path.
      expect(t2.lookup(c.cgroupId)?.id).toBe(c.id);
      expect((await t2.resolve(c.cgroupId))?.id).toBe(c.id);
    });

    it('attributes a binary run inside the container, and gives its in-container path next to the host path', async () => {
      const c = run();
      const t = await tracker();
      const child = spawnSync(
        'ctr',
        ['-n', ns, 'task', 'exec', '--exec-id', 'cat1', c.id, '/bin/cat', '/etc/passwd'],
        {
          encoding: 'utf8',
        },
      );
      expect(child.stdout).toContain('root:x:0:0');
      // The exec'd process is gone now; its records carry the container's cgroup id.
      expect(cgroupIdOf(c.pid)).toBe(c.cgroupId);
      expect((await t.resolve(c.cgroupId))?.imageConfigDigest).toBe(image.configDigest);
      const p = readProcessInfo(c.pid);
      expect(p).toMatchObject({
        exe: '/bin/busybox',
        hostExe: `/proc/${c.pid}/root/bin/busybox`,
        ownRoot: true,
        argv: ['/bin/sleep', '3600'],
      });
      const host = readProcessInfo(process.pid);
      expect(host.ownRoot).toBe(false);
      expect(host.hostExe).toBe(`/proc/${process.pid}/root${host.exe as string}`);
    });

    it('resolves a CRI-shaped kubepods cgroup, with pod and container names from the CRI labels', async () => {
      const podUid = '4f1d7a52-0c1e-4e8f-9a55-3b0c2f6e7d11';
      const id = `cri-${process.pid}`;
      const labelArgs = [
        'io.kubernetes.pod.name=web-0',
        'io.kubernetes.pod.namespace=shop',
        `io.kubernetes.pod.uid=${podUid}`,
        'io.kubernetes.container.name=app',
      ];
      // ctr has no --label on run for the helper; create with labels through ctr directly.
      execFileSync('ctr', [
        '-n',
        ns,
        'run',
        '-d',
        '--cgroup',
        `/kubepods/besteffort/pod${podUid}/${id}`,
        ...labelArgs.flatMap((l) => ['--label', l]),
        image.ref,
        id,
        '/bin/sleep',
        '3600',
      ]);
      const pid = await waitFor('CRI-shaped task pid', () => {
        const row = execFileSync('ctr', ['-n', ns, 'task', 'ls'], { encoding: 'utf8' })
          .split('\n')
          .find((l) => l.startsWith(`${id} `));
        const n = Number(row?.split(/\s+/)[1] ?? 0);
        return n > 0 ? n : undefined;
      });
      started.push({
        id,
        namespace: ns,
        pid,
        cgroupPath: '',
        cgroupId: 0n,
        exec: () => '',
        stop: () => stopCtr(id),
      });
      const t = await tracker();
      const cg = cgroupIdOf(pid);
      const r = await t.resolveDetailed(cg, pid);
      expect(r.status).toBe('resolved');
      const info = r.status === 'resolved' ? r.container : undefined;
      expect(info).toMatchObject({
        id,
        runtime: 'containerd',
        cgroupPath: `/kubepods/besteffort/pod${podUid}/${id}`,
        imageManifestDigest: image.manifestDigest,
        imageConfigDigest: image.configDigest,
        k8s: { pod: 'web-0', namespace: 'shop', podUid, container: 'app' },
      });
      expect(containerField(r)).toEqual({
        id,
        runtime: 'containerd',
        image_ref: image.ref,
        image_manifest_digest: image.manifestDigest,
        image_config_digest: image.configDigest,
        k8s: { pod: 'web-0', namespace: 'shop', pod_uid: podUid, container: 'app' },
        cgroup_path: `/kubepods/besteffort/pod${podUid}/${id}`,
        status: 'resolved',
      });
    });

    it('attributes a container started after tracking began from its first process (the race)', async () => {
      const t = await tracker();
      const stage = new EnrichmentStage(t, { waitMs: 1000 });
      const c = run();
      const out = [];
      for await (const batch of stage.run(
        (async function* () {
          yield [{ cgroupId: c.cgroupId, pid: c.pid, what: 'first exec' }];
          yield [{ cgroupId: cgroupIdOf(process.pid), pid: process.pid, what: 'host' }];
        })(),
      )) {
        out.push(...batch);
      }
      expect(out[0]!.enrichment).toMatchObject({
        status: 'resolved',
        container: { id: c.id, imageConfigDigest: image.configDigest },
      });
      expect(out[1]!.enrichment.status).toBe('host');
      expect(containerField(out[1]!.enrichment)).toBeUndefined();
    });

    it('learns a new container from containerd events, so the first lookup is a synchronous cache hit', async () => {
      const t = await tracker();
      // Let the event subscription reach containerd before the container is made
      // (runCtr blocks this thread while ctr runs).
      await new Promise((r) => setTimeout(r, 500));
      const calls = t.stats().runtimeCalls;
      const c = run();
      const info = await waitFor('event-driven prefetch', () => t.lookup(c.cgroupId, c.pid));
      expect(info).toMatchObject({ id: c.id, imageManifestDigest: image.manifestDigest });
      expect(t.stats().events).toBeGreaterThan(0);
      expect(t.stats().runtimeCalls).toBe(calls + 1); // one inspect, triggered by the event
    });

    it('keeps an exited container resolvable for the TTL, then forgets it', async () => {
      const t = await tracker({ ttlMs: 1500 });
      const c = run();
      const cg = c.cgroupId;
      expect((await t.resolve(cg, c.pid))?.id).toBe(c.id);
      c.stop();
      await waitFor('exit event', () => (t.stats().events >= 2 ? true : undefined));
      expect(t.lookup(cg)?.id).toBe(c.id); // late record after exit
      await new Promise((r) => setTimeout(r, 1600));
      expect(t.lookup(cg)).toBeUndefined();
    });

    it('symbolizes a static binary inside the container through map_files', async () => {
      const c = run({ args: ['/usr/bin/stella-connect', '0', 'wait'] });
      const frames = await waitFor('container process maps', () => {
        try {
          return new SymbolResolver().resolve(c.pid, [BigInt(staticVaddr + 4)]);
        } catch {
          return undefined;
        }
      });
      expect(frames[0]).toMatchObject({
        module: '/usr/bin/stella-connect',
        symbol: 'stella_named_connect',
        symbolOffset: 4,
      });
      // The module path is the in-container one; the host path is elsewhere.
      expect(readFileSync(join(cgroupV2Root(), c.cgroupPath, 'cgroup.procs'), 'utf8')).toContain(
        String(c.pid),
      );
    });

    it("looks up the first container after start on the start-up listing's connection, opening none", async () => {
      // Under load each new connection made inside a container's first lookup
      // kept its records unknown longer (the first container after start).
      const sockets = () =>
        readdirSync('/proc/self/fd').filter((fd) => {
          try {
            return readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:');
          } catch {
            return false; // closed meanwhile
          }
        }).length;
      const before = sockets();
      const client = new ContainerdClient(CONTAINERD_SOCKET, 10_000);
      try {
        await client.list();
        const listed = sockets();
        expect(listed - before).toBe(1);
        const c = await client.describeFromImage('not-made', image.ref, ns);
        expect(c).toMatchObject({ imageManifestDigest: image.manifestDigest, missing: [] });
        expect(sockets()).toBe(listed);
      } finally {
        client.close();
      }
    });

    it('reports an explicit socket that does not exist as a typed error with the fix', async () => {
      await expect(
        ContainerTracker.create({ containerd: { socket: '/nonexistent/containerd.sock' } }),
      ).rejects.toMatchObject({
        code: 'INVALID_OPTION',
        message: expect.stringContaining('pass containerd: false'),
      });
    });
  },
);

function stopCtr(id: string): void {
  spawnSync('ctr', ['-n', ns, 'task', 'kill', '-s', 'SIGKILL', id], { stdio: 'ignore' });
  for (let i = 0; i < 50; i++) {
    if (spawnSync('ctr', ['-n', ns, 'task', 'rm', '-f', id], { stdio: 'ignore' }).status === 0) break;
    spawnSync('sleep', ['0.1']);
  }
  spawnSync('ctr', ['-n', ns, 'container', 'rm', id], { stdio: 'ignore' });
}
