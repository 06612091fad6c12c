import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { type EvidenceRecord, validateRecord } from '@stellaops/ndjson';
import { canRunBpf, gate } from '@stellaops/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BuiltImage,
  buildImage,
  type CtrContainer,
  ctrUnavailableReason,
  importImage,
  runCtr,
} from '../../../tools/oci-image/ctr.js';
import { collect } from '../src/collect.js';

// Exec identity through collect() on the real kernel: the file a process
// runs (not the name it was given), its sha256 read through the process's
// root, a script's interpreter, digests of the shared objects a dynamically
// linked program maps, and runc's own set-up marked as such.

const bpf = canRunBpf('exec identity through collect()');
const sha256sum = (file: string) =>
  `sha256:${execFileSync('sha256sum', [file], { encoding: 'utf8' }).split(' ')[0]}`;
/** Run a command without blocking the event loop (the collector runs in this process); its pid once it exits. */
function runAsync(cmd: string, args: string[] = []): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', () => resolve(child.pid ?? 0));
  });
}
const text = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));

type Rec = EvidenceRecord & Record<string, unknown>;

/** Collect while `work` runs; stop once `done` holds for what was collected (or after 30 s). */
async function collectWhile(
  work: () => Promise<void> | void,
  done: (records: Rec[]) => boolean,
  options: Parameters<typeof collect>[0] = {},
): Promise<Rec[]> {
  const c = collect({
    enrich: false,
    probes: { tcp_state: false, libc_net: false, tls: false },
    statusIntervalMs: 60_000,
    // CI runs many tests at once: give digests room (the default 1 s wait is for production).
    digests: { waitMs: 20_000 },
    ...options,
  });
  await c.ready;
  const records: Rec[] = [];
  const consumer = (async () => {
    for await (const r of c) records.push(r as Rec);
  })();
  try {
    await work();
    const deadline = Date.now() + 30_000;
    while (!done(records) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  } finally {
    await c.close();
    await consumer;
  }
  for (const r of records) expect(validateRecord(r), JSON.stringify(r)).toEqual([]);
  return records;
}

describe.runIf(bpf)('exec identity on the host', () => {
  let dir: string;
  beforeAll(() => {
    dir = realpathSync(mkdtempSync(join(tmpdir(), 'stella-exec-id-')));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a #! script records its interpreter, and the interpreter binary the kernel runs with its sha256', async () => {
    const script = join(dir, 'hello.sh');
    writeFileSync(script, '#!/bin/sh\nsleep 1\n');
    chmodSync(script, 0o755);
    let pid = 0;
    const isScript = (r: Rec) => r.type === 'process_exec' && r.pid === pid && r.filename === script;
    const records = await collectWhile(
      async () => {
        pid = await runAsync(script);
      },
      (rs) => rs.some((r) => isScript(r) && (r.exe_digest ?? r.exe_digest_unavailable) !== undefined),
    );
    const exec = records.find(isScript);
    expect(exec, `no process_exec of ${script}`).toBeDefined();
    expect(exec).toMatchObject({
      interpreter: '/bin/sh',
      exe_path: realpathSync('/bin/sh'),
      exe_digest: sha256sum('/bin/sh'),
    });
    expect(exec).not.toHaveProperty('runtime_setup');
  }, 60_000);

  it('a dynamically linked program: the shared objects it maps carry their sha256', async () => {
    let pid = 0;
    const libc = (r: Rec) =>
      r.type === 'file_open' &&
      r.pid === pid &&
      /\/libc\.so\.6$/.test(text(r.path)) &&
      (r.ret as number) >= 0;
    const records = await collectWhile(
      async () => {
        // sleep: dynamically linked, alive long enough to be read through its root.
        pid = await runAsync('sleep', ['3']);
      },
      (rs) => rs.some(libc),
      // In-kernel dedup reports libc's open once per cgroup: this test's cgroup has opened it before.
      { dedup: { enabled: false } },
    );
    const open = records.find(libc);
    expect(open, 'no file_open of libc.so.6 by sleep').toBeDefined();
    expect(open!.file_digest, JSON.stringify(open)).toBe(sha256sum(text(open!.path)));
    // An open that is no shared object carries no digest member at all.
    const cache = records.find(
      (r) => r.type === 'file_open' && r.pid === pid && r.path === '/etc/ld.so.cache',
    );
    if (cache) {
      expect(cache).not.toHaveProperty('file_digest');
      expect(cache).not.toHaveProperty('file_digest_unavailable');
    }
  }, 60_000);
});

const ns = `stella-exec-id-${process.pid}`;

describe.runIf(bpf && gate('exec identity in a ctr container', ctrUnavailableReason()))(
  'exec identity in a container (containerd + runc)',
  () => {
    let image: BuiltImage;
    const started: CtrContainer[] = [];

    beforeAll(() => {
      image = buildImage({ ref: `docker.io/stellaops/exec-identity:${process.pid}` });
      importImage(image, ns);
    });

    afterAll(() => {
      for (const c of started) c.stop();
      spawnSync('ctr', ['-n', ns, 'image', 'rm', image.ref], { stdio: 'ignore' });
      for (let i = 0; i < 30; i++) {
        if (spawnSync('ctr', ['namespaces', 'rm', ns], { stdio: 'ignore' }).status === 0) break;
        spawnSync('sleep', ['0.2']);
      }
      rmSync(dirname(image.tar), { recursive: true, force: true });
    });

    it("busybox applets resolve to /bin/busybox with the image file's sha256; two argv of one binary both appear; runc's set-up is marked", async () => {
      let c: CtrContainer | undefined;
      const inContainer = (r: Rec) => c !== undefined && r.cgroup_id === c.cgroupId.toString();
      const applet = (argv1: string) => (r: Rec) =>
        r.type === 'process_exec' &&
        inContainer(r) &&
        r.filename === '/proc/self/exe' &&
        text((r.argv as unknown[])[0]) === 'sleep' &&
        text((r.argv as unknown[])[1]) === argv1;
      const digested = (r: Rec | undefined) =>
        r !== undefined && (r.exe_digest ?? r.exe_digest_unavailable) !== undefined;
      const records = await collectWhile(
        () => {
          // busybox sh runs a background applet as execve("/proc/self/exe", ["sleep", N]); pid 1 stays.
          c = runCtr({
            namespace: ns,
            image,
            args: ['/bin/sh', '-c', 'sleep 0 & wait; sleep 0.2 & wait; exec sleep 3600'],
          });
          started.push(c);
        },
        (rs) => digested(rs.find(applet('0'))) && digested(rs.find(applet('0.2'))),
      );
      const first = records.find(applet('0'));
      const second = records.find(applet('0.2'));
      expect(first, 'no exec of the applet `sleep 0`').toBeDefined();
      expect(
        second,
        'no exec of the applet `sleep 0.2` (same file, same filename, other argv)',
      ).toBeDefined();
      const busybox = sha256sum(`/proc/${c!.pid}/root/bin/busybox`);
      for (const e of [first!, second!]) {
        expect(e).toMatchObject({ exe_path: '/bin/busybox', exe_digest: busybox });
        expect(e).not.toHaveProperty('runtime_setup');
      }
      // runc's own exec and its nsexec stages are marked, never the image's entrypoint.
      const runcInit = records.filter(
        (r) =>
          r.type === 'process_exec' &&
          /(^|\/)runc$/.test(text((r.argv as unknown[])[0])) &&
          text((r.argv as unknown[])[1]) === 'init',
      );
      expect(runcInit.length, 'no `runc init` exec seen while the container started').toBeGreaterThan(0);
      for (const r of runcInit) expect(r.runtime_setup, JSON.stringify(r)).toBe(true);
      const stages = records.filter((r) => /^runc:\[[0-2]:/.test(text(r.comm)));
      expect(stages.length, "no record of runc's nsexec stages").toBeGreaterThan(0);
      for (const r of stages) expect(r.runtime_setup, JSON.stringify(r)).toBe(true);
      const entry = records.find(
        (r) =>
          r.type === 'process_exec' &&
          inContainer(r) &&
          r.filename === '/bin/sh' &&
          r.exe_path === '/bin/busybox',
      );
      expect(entry, 'no exec of the entrypoint /bin/sh').toBeDefined();
      expect(entry).not.toHaveProperty('runtime_setup');
    }, 120_000);

    it("with dedup on, the image's own opens of a file runc's set-up opened first are still reported, unmarked", async () => {
      let c: CtrContainer | undefined;
      const inContainer = (r: Rec) => c !== undefined && r.cgroup_id === c.cgroupId.toString();
      const byCat = (path: string) => (r: Rec) =>
        r.type === 'file_open' && inContainer(r) && text(r.comm) === 'cat' && r.path === path;
      const records = await collectWhile(
        () => {
          c = runCtr({
            namespace: ns,
            image,
            args: ['/bin/sh', '-c', 'cat /etc/passwd /etc/group >/dev/null; exec sleep 3600'],
          });
          started.push(c);
        },
        (rs) => rs.some(byCat('/etc/passwd')) && rs.some(byCat('/etc/group')),
        { dedup: { enabled: true } },
      );
      // runc's set-up opened these paths in the container's cgroup before the
      // entrypoint ran (the point of this test); the in-kernel dedup of that
      // cgroup must not fold the image's opens into runc's records.
      const setupPaths = new Set(
        records
          .filter((r) => r.type === 'file_open' && inContainer(r) && r.runtime_setup === true)
          .map((r) => text(r.path)),
      );
      for (const path of ['/etc/passwd', '/etc/group']) {
        const opens = records.filter(byCat(path));
        expect(
          opens.length,
          `cat's open of ${path} (runc opened it first: ${setupPaths.has(path)})`,
        ).toBeGreaterThan(0);
        for (const r of opens) expect(r).not.toHaveProperty('runtime_setup');
      }
    }, 120_000);
  },
);
