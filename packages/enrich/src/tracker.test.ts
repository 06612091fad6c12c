import { spawn } from 'node:child_process';
import { mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gate } from '@stellaops/testing';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { defaultCgroupRoot } from './cgroup.js';
import { EnrichError } from './errors.js';
import type { RuntimeClient, RuntimeContainer } from './external/types.js';
import { ContainerTracker } from './tracker.js';

const none = { containerd: false, docker: false, podman: false, crio: false } as const;

describe('ContainerTracker options', () => {
  it.each([
    [{ ttlMs: -1 }, /ttlMs must be a number of ms >= 0/],
    [{ maxEntries: 0 }, /maxEntries must be an integer >= 1/],
    [{ requestTimeoutMs: Number.NaN }, /requestTimeoutMs/],
    [{ docker: { socket: '' } }, /docker\.socket must be a socket path/],
    [
      { podman: { socket: '/nonexistent/podman.sock' } },
      /podman\.socket: \/nonexistent\/podman\.sock does not exist/,
    ],
  ])('%o is rejected with INVALID_OPTION', async (opt, msg) => {
    await expect(ContainerTracker.create({ ...none, ...opt })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      message: expect.stringMatching(msg),
    });
  });

  it('reports use after close as CLOSED and closes twice harmlessly', async () => {
    const t = await ContainerTracker.create(none);
    t.close();
    t.close();
    expect(() => t.lookup(1n)).toThrow(expect.objectContaining({ code: 'CLOSED' }));
  });
});

const HEX = 'feedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedface';
const reason = process.getuid?.() !== 0 ? 'needs root to create cgroups' : undefined;

// Real cgroups; the runtime behind them is a stand-in RuntimeClient (the
// real runtimes are exercised in test/): this checks the tracker's own rules.
describe.runIf(gate('ContainerTracker rules on real cgroups', reason))(
  'ContainerTracker on a real docker-shaped cgroup',
  () => {
    const slice = join(defaultCgroupRoot(), `stella-tracker-test-${process.pid}.slice`);
    const scope = join(slice, `docker-${HEX}.scope`);
    let child: ReturnType<typeof spawn>;
    let cgroupId: bigint;

    beforeAll(async () => {
      mkdirSync(scope, { recursive: true });
      child = spawn('sleep', ['60'], { stdio: 'ignore' });
      await new Promise((r) => child.once('spawn', r));
      writeFileSync(join(scope, 'cgroup.procs'), String(child.pid));
      const { statSync } = await import('node:fs');
      cgroupId = statSync(scope, { bigint: true }).ino;
    });

    afterAll(async () => {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      rmdirSync(scope);
      rmdirSync(slice);
    });

    it('names the container from its cgroup when no runtime API is connected, saying so', async () => {
      const t = await ContainerTracker.create(none);
      const r = await t.resolveDetailed(cgroupId, child.pid);
      expect(r).toEqual({
        status: 'resolved',
        cgroupPath: `/stella-tracker-test-${process.pid}.slice/docker-${HEX}.scope`,
        container: {
          id: HEX,
          runtime: 'docker',
          cgroupPath: `/stella-tracker-test-${process.pid}.slice/docker-${HEX}.scope`,
          missing: ['image_ref: no docker API connected (socket not found; pass docker.socket)'],
        },
      });
      t.close();
    });

    it('asks the runtime once per container, however many lookups race', async () => {
      let calls = 0;
      const standIn: RuntimeClient = {
        runtime: 'docker',
        socket: '(stand-in)',
        async inspect(id): Promise<RuntimeContainer | undefined> {
          calls++;
          await new Promise((r) => setTimeout(r, 50));
          return {
            id,
            runtime: 'docker',
            imageRef: 'x:1',
            imageConfigDigest: 'sha256:aa',
            labels: {},
            missing: [],
          };
        },
        async list() {
          return [];
        },
        subscribe() {
          return () => {};
        },
        close() {},
      };
      const t = await ContainerTracker.create({ clients: [standIn] });
      const rs = await Promise.all(Array.from({ length: 20 }, () => t.resolve(cgroupId, child.pid)));
      expect(calls).toBe(1);
      expect(new Set(rs.map((r) => r?.imageRef))).toEqual(new Set(['x:1']));
      expect(t.lookup(cgroupId)?.imageConfigDigest).toBe('sha256:aa'); // now cached by id alone
      t.close();
    });

    it('keeps a container the runtime reports stopped only for the TTL', async () => {
      const standIn: RuntimeClient = {
        runtime: 'docker',
        socket: '(stand-in)',
        async inspect() {
          return undefined; // gone by now
        },
        async list(): Promise<RuntimeContainer[]> {
          return [{ id: HEX, runtime: 'docker', imageRef: 'x:1', labels: {}, exited: true, missing: [] }];
        },
        subscribe() {
          return () => {};
        },
        close() {},
      };
      // The clock is the test's (only Date: timers and I/O stay real), so a
      // loaded machine cannot age the entry between the two lookups.
      vi.useFakeTimers({ toFake: ['Date'] });
      try {
        const t = await ContainerTracker.create({ clients: [standIn], ttlMs: 300 });
        expect(t.lookup(cgroupId, child.pid)?.imageRef).toBe('x:1');
        vi.setSystemTime(Date.now() + 299);
        expect(t.lookup(cgroupId, child.pid)?.imageRef).toBe('x:1');
        vi.setSystemTime(Date.now() + 2);
        expect(t.lookup(cgroupId, child.pid)).toBeUndefined();
        t.close();
      } finally {
        vi.useRealTimers();
      }
    });
  },
);

/** A containerd stand-in: namespaces as given, no containers; counts the calls. */
function containerdStandIn(namespaces: string[]) {
  const calls = { inspect: 0, namespaces: 0 };
  const client: RuntimeClient = {
    runtime: 'containerd',
    socket: '(stand-in)',
    async inspect() {
      calls.inspect++;
      return undefined; // removed before it could be inspected
    },
    async listNamespaces() {
      calls.namespaces++;
      return namespaces;
    },
    async list(): Promise<RuntimeContainer[]> {
      return [];
    },
    subscribe() {
      return () => {};
    },
    close() {},
  };
  return { client, calls };
}

type RuntimeEvent = import('./external/types.js').RuntimeEvent;

/** A containerd stand-in whose events the test pushes; `parts` answer the lookups. */
function eventedContainerd(
  namespaces: string[],
  parts: Pick<RuntimeClient, 'inspect'> & Partial<Pick<RuntimeClient, 'describeFromImage'>>,
) {
  let push: ((e: RuntimeEvent) => void) | undefined;
  const client: RuntimeClient = {
    runtime: 'containerd',
    socket: '(stand-in)',
    ...parts,
    async listNamespaces() {
      return namespaces;
    },
    async list(): Promise<RuntimeContainer[]> {
      return [];
    },
    subscribe(onEvent) {
      push = onEvent;
      return () => {};
    },
    close() {},
  };
  return { client, push: (e: RuntimeEvent) => push?.(e) };
}

describe('ContainerTracker on cgroups learnt at creation (short-lived containers)', () => {
  it('never calls a cgroup laid out like a container host when the runtime does not know it: unknown, saying why', async () => {
    const { client } = containerdStandIn(['default', 'shop']);
    const t = await ContainerTracker.create({ clients: [client], lateEventWaitMs: 0 });
    try {
      t.learnCgroup(900_001n, '/shop/web-1');
      const r = await t.resolveDetailed(900_001n);
      expect(r).toMatchObject({ status: 'unknown', cgroupPath: '/shop/web-1' });
      expect(r.status === 'unknown' && r.reason).toMatch(/containerd does not know container web-1/);
    } finally {
      t.close();
    }
  });

  it('answers /<ns>/<id> cgroups under a namespace containerd does not have as host, without a call per cgroup', async () => {
    const { client, calls } = containerdStandIn(['default']);
    const t = await ContainerTracker.create({ clients: [client], lateEventWaitMs: 0 });
    try {
      for (let i = 0; i < 20; i++) {
        const id = 900_100n + BigInt(i);
        t.learnCgroup(id, `/process_api/${i.toString(16).padStart(32, 'a')}`);
        expect((await t.resolveDetailed(id)).status).toBe('host');
      }
      expect(calls.inspect).toBe(0);
      // Once from the cache, once fresh (a namespace made a moment ago), then the verdict is kept.
      expect(calls.namespaces).toBe(2);
    } finally {
      t.close();
    }
  });

  it('does not take a namespace made after the cached list for a host cgroup', async () => {
    const { client } = containerdStandIn(['default']);
    const stale = client.listNamespaces!.bind(client);
    client.listNamespaces = async (fresh?: boolean) => (fresh ? ['default', 'made-now'] : stale());
    const t = await ContainerTracker.create({ clients: [client], lateEventWaitMs: 0 });
    try {
      t.learnCgroup(900_300n, '/made-now/c1');
      expect((await t.resolveDetailed(900_300n)).status).toBe('unknown');
    } finally {
      t.close();
    }
  });

  it('attributes a container gone before it was inspected from the image its create event named', async () => {
    const { client, push } = eventedContainerd(['default'], {
      async inspect() {
        return undefined;
      },
      async describeFromImage(id, imageRef, namespace) {
        return {
          id,
          runtime: 'containerd',
          ...(namespace !== undefined && { namespace }),
          imageRef,
          imageManifestDigest: 'sha256:m',
          imageConfigDigest: 'sha256:c',
          labels: {},
          missing: [],
        };
      },
    });
    const t = await ContainerTracker.create({ clients: [client] });
    try {
      t.learnCgroup(900_200n, '/default/gone-1');
      const pending = t.resolveDetailed(900_200n);
      // The events come after the record (the container lived 5 ms): create names the image.
      push({ runtime: 'containerd', kind: 'create', id: 'gone-1', namespace: 'default', imageRef: 'x:1' });
      push({ runtime: 'containerd', kind: 'delete', id: 'gone-1', namespace: 'default' });
      expect(await pending).toMatchObject({
        status: 'resolved',
        container: {
          id: 'gone-1',
          imageRef: 'x:1',
          imageManifestDigest: 'sha256:m',
          imageConfigDigest: 'sha256:c',
        },
      });
    } finally {
      t.close();
    }
  });
});

/**
 * A containerd stand-in for a loaded host: `answers` says, per inspect call
 * in order, whether it fails (the runtime timed out), answers without the
 * image digests (timed out inside the lookup), or answers in full; the last
 * entry repeats. Events are pushed by the test.
 */
function slowContainerd(answers: ('fail' | 'incomplete' | 'full')[]) {
  const calls = { inspect: 0 };
  const { client, push } = eventedContainerd(['shop'], {
    async inspect(id, namespace) {
      const answer = answers[Math.min(calls.inspect++, answers.length - 1)];
      const why = 'containerd at (stand-in): Deadline exceeded';
      if (answer === 'fail') throw new EnrichError('RUNTIME_UNAVAILABLE', why);
      const base = { id, runtime: 'containerd' as const, namespace: namespace ?? 'shop', imageRef: 'x:1' };
      if (answer === 'incomplete') {
        const missing = [`image_manifest_digest: ${why}`, `image_config_digest: ${why}`];
        return { ...base, labels: {}, missing, incomplete: true };
      }
      return {
        ...base,
        imageManifestDigest: 'sha256:m',
        imageConfigDigest: 'sha256:c',
        labels: {},
        missing: [],
      };
    },
  });
  return { client, calls, push };
}

describe('ContainerTracker when the runtime is slow to answer (the first container after start, loaded host)', () => {
  it("attributes a live container's later records once the runtime answers, after its first lookups failed", async () => {
    const rt = slowContainerd(['fail', 'fail', 'full']);
    const t = await ContainerTracker.create({ clients: [rt.client], lateEventWaitMs: 0 });
    try {
      t.learnCgroup(900_400n, '/shop/web-1');
      rt.push({ runtime: 'containerd', kind: 'create', id: 'web-1', namespace: 'shop', imageRef: 'x:1' });
      // The first record's lookup: containerd did not answer; that record goes out unknown.
      const first = await t.resolveDetailed(900_400n);
      expect(first).toMatchObject({ status: 'unknown', cgroupPath: '/shop/web-1' });
      expect(first.status === 'unknown' && first.reason).toMatch(/Deadline exceeded/);
      // No event, no new lookup: the container's later records find it in the cache.
      await vi.waitFor(() => expect(t.peek(900_400n)?.status).toBe('resolved'), { timeout: 15_000 });
      expect(t.lookup(900_400n)).toMatchObject({ id: 'web-1', imageManifestDigest: 'sha256:m' });
    } finally {
      t.close();
    }
  });

  it('fills in the image of a container whose first answer timed out inside the image lookup', async () => {
    const rt = slowContainerd(['incomplete', 'full']);
    const t = await ContainerTracker.create({ clients: [rt.client], lateEventWaitMs: 0 });
    try {
      t.learnCgroup(900_500n, '/shop/web-2');
      const first = await t.resolve(900_500n);
      expect(first).toMatchObject({ id: 'web-2', imageRef: 'x:1' });
      expect(first?.imageManifestDigest).toBeUndefined();
      await vi.waitFor(() => expect(t.lookup(900_500n)?.imageManifestDigest).toBe('sha256:m'), {
        timeout: 15_000,
      });
      expect(t.lookup(900_500n)).toMatchObject({ imageConfigDigest: 'sha256:c' });
      expect(t.lookup(900_500n)?.missing).toBeUndefined();
    } finally {
      t.close();
    }
  });

  it('stops asking once the runtime answered in full, and when closed', async () => {
    const rt = slowContainerd(['fail', 'full']);
    const t = await ContainerTracker.create({ clients: [rt.client], lateEventWaitMs: 0 });
    t.learnCgroup(900_600n, '/shop/web-3');
    rt.push({ runtime: 'containerd', kind: 'create', id: 'web-3', namespace: 'shop' });
    await vi.waitFor(() => expect(t.peek(900_600n)?.status).toBe('resolved'), { timeout: 15_000 });
    const asked = rt.calls.inspect;
    await new Promise((r) => setTimeout(r, 1500));
    expect(rt.calls.inspect).toBe(asked);
    t.close();

    const failing = slowContainerd(['fail']);
    const t2 = await ContainerTracker.create({ clients: [failing.client], lateEventWaitMs: 0 });
    failing.push({ runtime: 'containerd', kind: 'create', id: 'web-4', namespace: 'shop' });
    await vi.waitFor(() => expect(failing.calls.inspect).toBeGreaterThanOrEqual(2), { timeout: 15_000 });
    t2.close();
    const atClose = failing.calls.inspect;
    await new Promise((r) => setTimeout(r, 1500));
    expect(failing.calls.inspect).toBe(atClose);
  });
});
